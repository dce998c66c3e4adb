import { MailError } from '../errors.js';
import { proxyLabel, type ConnectTarget, type ProxyServer } from './proxy.js';

/**
 * A tunnel the proxy did not open: it answered CONNECT with something other than 2xx, or could
 * not be reached at all. `code` is EPROXY, as nodemailer's and imapflow's own proxy failures are,
 * so that one check finds it whichever client made the connection. The message names the proxy
 * by host and port only.
 */
export class ProxyFailure extends Error {
  readonly code = 'EPROXY';

  constructor(
    readonly proxy: string,
    readonly target: string,
    /** The proxy's answer to CONNECT; absent when it could not be reached. */
    readonly status?: number,
    /** The socket error when it could not be reached (ECONNREFUSED, ENOTFOUND, ETIMEDOUT). */
    readonly reason?: string,
  ) {
    super(status !== undefined ? `the proxy ${proxy} refused the tunnel to ${target}: HTTP ${status}` : `the proxy ${proxy} could not be reached (${reason ?? 'no answer'}) for a tunnel to ${target}`);
    this.name = 'ProxyFailure';
  }
}

/** Socket errors that, on a connection through a proxy, can only be about the proxy: the client connects to nothing else. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

interface ProxyFault {
  status?: number;
  reason?: string;
  /** host:port the tunnel was for, when the error says (ours do). */
  target?: string;
}

/** Our ProxyFailure's message, also where a client kept only the message (the Azure SDK's RestError, @azure/identity's errors). */
const FAILURE_MESSAGE = /the proxy \S+ (?:refused the tunnel to (\S+): HTTP (\d{3})|could not be reached \((\w+)\) for a tunnel to (\S+))/;

/**
 * The proxy failure an error is, or is caused by: ours (ProxyFailure, also as the message of the
 * Azure SDK's RestError, which keeps only the code and message of what failed), nodemailer's and
 * imapflow's EPROXY ("Invalid response from proxy: 407"), undici's cause chain, or a socket error
 * on the connection to the proxy.
 */
function proxyFault(error: unknown, depth = 0): ProxyFault | undefined {
  // A MailError is translated already, by the edge that met it (a token request's EPROXY names the token endpoint).
  if (depth > 5 || typeof error !== 'object' || error === null || error instanceof MailError) return undefined;
  const e = error as { code?: unknown; message?: unknown; cause?: unknown; _err?: unknown; errors?: unknown };
  if (error instanceof ProxyFailure) return { status: error.status, reason: error.reason, target: error.target };
  const message = typeof e.message === 'string' ? e.message : '';
  const ours = FAILURE_MESSAGE.exec(message);
  if (ours) return ours[2] !== undefined ? { status: Number(ours[2]), target: ours[1] } : { reason: ours[3], target: ours[4] };
  // imapflow wraps its proxy failure as "Failed to setup proxy connection" with the cause in _err.
  for (const inner of [e.cause, e._err, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const found = proxyFault(inner, depth + 1);
    if (found) return found;
  }
  if (e.code === 'EPROXY') {
    // nodemailer's and imapflow's: "Invalid response from proxy: 407".
    const status = /Invalid response from proxy: (\d{3})\b/.exec(message)?.[1];
    return status !== undefined ? { status: Number(status) } : { reason: message || 'EPROXY' };
  }
  if (typeof e.code === 'string' && UNREACHABLE.has(e.code)) return { reason: e.code };
  return undefined;
}

export interface ProxyErrorContext {
  /** The proxy the connection went through; without one there is no proxy to blame. */
  server: ProxyServer | undefined;
  target: ConnectTarget;
  /** The profile the connection was made for; absent for the app's own (Key Vault, Storage). */
  profile?: string;
}

/**
 * EPROXY for an error that is a proxy's refusal or absence, with a hint naming the profile, the
 * proxy (host and port, never its password) and what to change; undefined for any other error,
 * which the caller translates as it would without a proxy.
 */
export function proxyMailError(error: unknown, context: ProxyErrorContext): MailError | undefined {
  const server = context.server;
  if (server === undefined) return undefined;
  const fault = proxyFault(error);
  if (!fault) return undefined;
  const proxy = proxyLabel(server);
  const target = fault.target ?? `${context.target.host}:${context.target.port}`;
  const port = /:(\d+)$/.exec(target)?.[1] ?? String(context.target.port);
  const host = target.slice(0, target.length - port.length - 1);
  const who = context.profile !== undefined ? `profile "${context.profile}": ` : '';
  const where = server.field === 'HTTPS_PROXY' || server.field === 'https_proxy' ? `the app setting ${server.field}` : server.field;
  const status = fault.status;
  const message =
    status !== undefined
      ? `${who}the proxy ${proxy} refused the tunnel to ${target} (HTTP ${status})`
      : `${who}the proxy ${proxy} could not be reached (${fault.reason ?? 'no answer'}) to connect to ${target}`;
  let hint: string;
  if (status === 407) {
    hint =
      server.username === undefined
        ? `The proxy ${proxy} wants credentials: put the user in the URL of ${where} (http://user@${proxy.replace(/^\w+:\/\//, '')}) and its password ${server.field.startsWith('profiles.') ? `in the secret named by ${server.field}.passwordSecret` : 'after it (http://user:password@host:port)'}.`
        : `The proxy ${proxy} refused the credentials of user "${server.username}" (${where}): check the user, and the password ${server.passwordSecret !== undefined ? `in the secret "${server.passwordSecret}"` : `in ${where}`}.`;
  } else if (status !== undefined && status >= 500) {
    hint = `The proxy ${proxy} could not reach ${target} itself: check the endpoint${context.profile !== undefined ? ` of profile "${context.profile}"` : ''} and that the proxy may connect to it.`;
  } else if (status !== undefined) {
    hint = `The proxy ${proxy} (${where}) does not allow tunnels to ${target}: ask its administrators to allow CONNECT to port ${port} of ${host}, or list the host in NO_PROXY if it is reached without the proxy.`;
  } else {
    hint = `Nothing answers at the proxy ${proxy}: check ${where} (the proxy's host and port) and that this host may reach it.`;
  }
  return new MailError('EPROXY', message, { ...(context.profile !== undefined && { profile: context.profile }), field: server.field, hint, ...(status !== undefined && { providerCode: String(status) }), cause: error });
}
