import type { Profile } from '../../config/profiles.js';
import { MailError, type ErrorCode } from '../../errors.js';
import { redact } from '../../redact.js';
import { exchangeAuthHint, socketErrorKind } from '../mailProtocolErrors.js';

/** The fields imapflow sets on the errors it raises (see imapflow's errors.ts and tools.ts). */
interface ImapFlowError {
  message?: string;
  code?: string;
  /** The server's text, e.g. "AUTHENTICATE failed." */
  response?: string;
  /** The bracketed response code, e.g. AUTHENTICATIONFAILED, LIMIT, TRYCREATE. */
  serverResponseCode?: string;
  authenticationFailed?: boolean;
  mailboxMissing?: boolean;
  /** Milliseconds Office 365 asked to back off ("Request is throttled. Suggested Backoff Time: N milliseconds"). */
  throttleReset?: number;
  /** The BYE text when the server closed the session. */
  reason?: string;
}

const CONNECTION_LOST = new Set(['NoConnection', 'EConnectionClosed', 'ClosedAfterConnectText', 'ClosedAfterConnectTLS', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'ETIMEOUT', 'UPGRADE_TIMEOUT']);

/** Translates an imapflow error into a MailError, once, at this edge. Server text passes `redact`. */
export function translateImapError(profile: Profile, error: unknown, operation: string): MailError {
  if (error instanceof MailError) return error;
  const e = (error ?? {}) as ImapFlowError;
  const { host, port } = profile.endpoints.imap;
  const text = redact([e.message, e.response, e.reason].filter((t, i, all) => t && all.indexOf(t) === i).join(': ') || String(error));
  const make = (code: ErrorCode, hint: string, extra: { retryAfter?: number } = {}) =>
    new MailError(code, `profile "${profile.name}": IMAP ${operation} failed: ${text}`, {
      profile: profile.name,
      hint,
      providerCode: e.serverResponseCode ?? e.code,
      retryAfter: extra.retryAfter,
      cause: error,
    });

  if (e.authenticationFailed || e.serverResponseCode === 'AUTHENTICATIONFAILED') return make('EAUTH', exchangeAuthHint(profile, 'IMAP'));
  if (e.code === 'ETHROTTLE' || e.serverResponseCode === 'LIMIT') {
    return make('ETHROTTLED', 'Exchange Online throttles IMAP for this mailbox: poll less often or fetch fewer messages per poll.', {
      retryAfter: e.throttleReset ? Math.ceil(e.throttleReset / 1000) : 60,
    });
  }
  if (e.serverResponseCode === 'UNAVAILABLE' || (e.code === 'NoConnection' && e.reason)) {
    return make('EUNAVAILABLE', `The IMAP server at ${host}:${port} ended the session (${e.reason ?? 'unavailable'}): retry later.`, { retryAfter: 60 });
  }
  if (e.mailboxMissing || e.serverResponseCode === 'NONEXISTENT') {
    return make('EMAILBOX', `The folder does not exist in ${profile.mailbox}: check receive.folder (Exchange names the inbox INBOX; other folders by their display path, e.g. "Inbox/Tickets").`);
  }
  const kind = socketErrorKind(error);
  if (kind === 'ETLS') return make('ETLS', `TLS with ${host}:${port} failed: the server must present a certificate this host trusts (NODE_EXTRA_CA_CERTS for a private CA or a TLS-inspecting proxy).`);
  if (kind === 'ECONNECTION' || CONNECTION_LOST.has(e.code ?? '')) {
    return make('ECONNECTION', `Could not talk to ${host}:${port}: check endpoints.imap, DNS, and that outbound port ${port} is open from this host.`, { retryAfter: 30 });
  }
  return make('EPROVIDER', 'Unexpected answer from the IMAP server: see providerCode and the server text.');
}
