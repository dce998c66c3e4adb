import type { z } from 'zod';
/**
 * The one error-code table. Every error this project raises is a MailError with a
 * stable `code` (callers branch on it, never on message text), the HTTP status the
 * API answers with, and a `hint` a person can act on. Provider errors are translated
 * into these once, at the transport edge.
 */
export const ERROR_CODES = {
  // Bad input: never reaches a transport.
  EINPUT: { status: 400, title: 'Invalid request' },
  EPROFILE_UNKNOWN: { status: 400, title: 'Unknown profile' },
  ENO_RECIPIENTS: { status: 422, title: 'No recipients' },
  EFROM_NOT_ALLOWED: { status: 403, title: 'Sender not allowed for this profile' },
  EUNAUTHENTICATED: { status: 401, title: 'No valid caller credentials' },
  EFORBIDDEN: { status: 403, title: 'Not allowed for this caller' },
  ETOO_LARGE: { status: 413, title: 'Message too large' },
  ENOTHING_TO_SEND: { status: 422, title: 'Nothing to send' },
  ETOO_MANY_RECIPIENTS: { status: 422, title: 'Too many recipients' },
  ETOO_MANY_ATTACHMENTS: { status: 422, title: 'Too many attachments' },
  ETOO_MANY_HEADERS: { status: 422, title: 'Too many headers' },
  // Configuration: raised at start-up, names the profile and field.
  ECONFIG: { status: 500, title: 'Invalid configuration' },
  // Secrets and identity.
  ESECRET_NOT_FOUND: { status: 500, title: 'Secret not found' },
  ESECRET_ACCESS: { status: 502, title: 'Secret store refused access' },
  ETOKEN: { status: 502, title: 'Could not obtain an access token' },
  // Delegated consent (GET /api/connect, /api/oauth/callback): declined, tampered, expired or out of order.
  ECONSENT: { status: 400, title: 'Consent could not be completed' },
  ECERTIFICATE: { status: 500, title: 'The certificate in the secret store is not usable' },
  // Provider answers.
  EAUTH: { status: 502, title: 'The mail provider refused authentication' },
  ESEND_DENIED: { status: 502, title: 'The mail provider refused to send as this sender' },
  EMAILBOX: { status: 502, title: 'Mailbox not available' },
  ETHROTTLED: { status: 429, title: 'Throttled by the mail provider' },
  EUNAVAILABLE: { status: 503, title: 'Mail provider unavailable' },
  EREJECTED: { status: 502, title: 'The mail provider rejected the message' },
  ECONNECTION: { status: 502, title: 'Could not connect to the mail provider' },
  ETLS: { status: 502, title: 'TLS negotiation with the mail provider failed' },
  // The outbound proxy (HTTPS_PROXY, a profile's proxy) refused a tunnel or could not be reached.
  EPROXY: { status: 502, title: 'The outbound proxy refused the connection' },
  EPROVIDER: { status: 502, title: 'Unexpected answer from the mail provider' },
  // A failure that is not one of the above is a bug: its details go to the log, never to the caller.
  EINTERNAL: { status: 500, title: 'Internal error' },
  // Incoming mail: dead-lettered with its raw source, never retried.
  EPARSE: { status: 422, title: 'The message cannot be parsed as e-mail' },
  // Receiving: state storage and delivery to the profile's sink.
  ESTATE: { status: 503, title: 'State storage unavailable' },
  EBACKLOG: { status: 503, title: 'Too many sends waiting for this profile' },
  ESTATE_CONFLICT: { status: 409, title: 'Mailbox state was changed by another worker' },
  ESINK_REJECTED: { status: 502, title: 'The delivery target refused the message' },
  ESINK_UNAVAILABLE: { status: 502, title: 'The delivery target is unavailable' },
  // Queued sending and idempotency (POST /api/send, GET /api/send/{id}).
  ESEND_NOT_FOUND: { status: 404, title: 'No send with this id' },
  EIDEMPOTENCY_MISMATCH: { status: 422, title: 'Idempotency key reused with a different request' },
  EIDEMPOTENCY_IN_PROGRESS: { status: 409, title: 'A request with this idempotency key is still in progress' },
  // An attempt whose outcome was lost (a crash, a connection lost after the whole message went) that could not be looked up, under send.unknownOutcome "atMostOnce".
  ESEND_UNKNOWN: { status: 502, title: 'Whether the message was sent is unknown' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MailErrorOptions {
  hint?: string;
  field?: string;
  profile?: string;
  /** Seconds to wait before retrying, from a provider's Retry-After. */
  retryAfter?: number;
  /** The provider's own code (SMTP enhanced status, Graph error code), for diagnosis. */
  providerCode?: string;
  /** For EUNAUTHENTICATED: the WWW-Authenticate challenge the answer carries (RFC 9110 11.6.1). */
  challenge?: string;
  /**
   * The provider may have taken the message: the failure came after the whole message was handed
   * over and before its answer (a connection lost after SMTP's DATA terminator, a Graph send
   * request that timed out). Sending again must first look whether it went out.
   */
  outcomeUnknown?: boolean;
  cause?: unknown;
}

export class MailError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint?: string;
  readonly field?: string;
  readonly profile?: string;
  readonly retryAfter?: number;
  readonly providerCode?: string;
  readonly challenge?: string;
  readonly outcomeUnknown?: boolean;

  constructor(code: ErrorCode, message: string, options: MailErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MailError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.hint = options.hint;
    this.field = options.field;
    this.profile = options.profile;
    this.retryAfter = options.retryAfter;
    this.providerCode = options.providerCode;
    this.challenge = options.challenge;
    if (options.outcomeUnknown) this.outcomeUnknown = true;
  }

  get title(): string {
    return ERROR_CODES[this.code].title;
  }
}

export function isMailError(error: unknown): error is MailError {
  return error instanceof MailError;
}

/** The error itself, or for anything that is not a MailError (a bug) EINTERNAL without its details, which belong in the log. */
export function asMailError(error: unknown, hint = 'See the function logs for this invocation.'): MailError {
  return isMailError(error) ? error : new MailError('EINTERNAL', 'internal error', { hint });
}

/** True for errors after which re-reading the secret and retrying once may help. */
export function isAuthFailure(error: unknown): boolean {
  return isMailError(error) && (error.code === 'EAUTH' || error.code === 'ETOKEN');
}

/** Turns a zod failure at the boundary into EINPUT naming the first offending field. */
export function inputError(error: z.ZodError, prefix?: string): MailError {
  const issue = error.issues[0]!;
  // An unknown property is reported on its parent and a bad record key with a generic
  // message: name the property itself, and say what was wrong with the key.
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
  const message = issue.code === 'unrecognized_keys' ? 'is not a known field' : issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
  // An empty property name ("": 1) is named "" rather than dropped, which would name no field at all.
  const field = [prefix, ...path.map((segment) => (segment === '' ? '""' : String(segment)))].filter(Boolean).join('.') || undefined;
  return new MailError('EINPUT', `${field ?? 'body'}: ${message}`, {
    field,
    hint: field ? `Correct "${field}" and send again.` : 'Send a JSON object as the request body.',
  });
}
