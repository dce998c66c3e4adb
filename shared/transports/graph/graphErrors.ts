import { MailError, type ErrorCode } from '../../errors.js';
import { redact } from '../../redact.js';

/**
 * Graph's answers translated into our codes, once, at this edge. Graph error bodies are
 * `{"error":{"code","message","innerError"}}`; the code is matched first, then the status.
 * Codes: https://learn.microsoft.com/graph/errors and the Exchange codes Outlook mail returns.
 */
interface Translation {
  code: ErrorCode;
  hint: string | ((context: GraphErrorContext) => string);
}

export interface GraphErrorContext {
  profile: string;
  mailbox: string;
}

const PERMISSION_HINT =
  'Grant the app the Microsoft Graph application permission Mail.Send (Mail.Read / Mail.ReadWrite to read, mark or move) with admin consent; an Application Access Policy may also fence this mailbox off from the app.';

const BY_GRAPH_CODE: Record<string, Translation> = {
  ErrorSendAsDenied: {
    code: 'ESEND_DENIED',
    hint: (c) => `The mailbox ${c.mailbox} may not send as this from address: grant it Send As (or Send on Behalf) rights on that address in Exchange, or send from the mailbox itself.`,
  },
  ErrorAccessDenied: { code: 'EAUTH', hint: PERMISSION_HINT },
  AccessDenied: { code: 'EAUTH', hint: PERMISSION_HINT },
  Authorization_RequestDenied: { code: 'EAUTH', hint: PERMISSION_HINT },
  InvalidAuthenticationToken: {
    code: 'EAUTH',
    hint: 'Graph refused the access token (expired, or issued for another resource or tenant): check tenantId, clientId and the cloud/endpoints of this profile.',
  },
  MailboxNotEnabledForRESTAPI: {
    code: 'EMAILBOX',
    hint: (c) => `The mailbox ${c.mailbox} cannot be reached through Graph: it is on-premises, inactive, soft-deleted or has no Exchange Online licence.`,
  },
  ErrorInvalidRecipients: { code: 'EREJECTED', hint: 'Graph rejected a recipient address: check to, cc and bcc.' },
  ResourceNotFound: { code: 'EMAILBOX', hint: (c) => `Graph found no mailbox ${c.mailbox} (or the item asked for): check the profile's mailbox address and that it has an Exchange Online mailbox.` },
  ErrorInvalidUser: { code: 'EMAILBOX', hint: (c) => `Graph found no mailbox ${c.mailbox}: check the profile's mailbox address and that it has an Exchange Online mailbox.` },
  ErrorItemNotFound: { code: 'EMAILBOX', hint: 'The message or folder no longer exists in the mailbox (moved or deleted meanwhile).' },
  ErrorMessageSizeExceeded: { code: 'ETOO_LARGE', hint: 'The message exceeds the mailbox\'s maximum send size (35 MB by default in Exchange Online, up to 150 MB when raised): send smaller attachments or a link.' },
  ErrorQuotaExceeded: { code: 'EMAILBOX', hint: (c) => `The mailbox ${c.mailbox} is over its storage quota: free space (Drafts, Sent Items, Deleted Items).` },
};

const BY_STATUS: Record<number, Translation> = {
  400: { code: 'EREJECTED', hint: 'Graph rejected the request as malformed; the provider code and message say which part.' },
  401: BY_GRAPH_CODE.InvalidAuthenticationToken!,
  403: { code: 'EAUTH', hint: PERMISSION_HINT },
  404: BY_GRAPH_CODE.ErrorInvalidUser!,
  413: BY_GRAPH_CODE.ErrorMessageSizeExceeded!,
  429: { code: 'ETHROTTLED', hint: 'Graph throttles this mailbox or app: retry after the Retry-After interval, and send fewer messages in parallel per mailbox.' },
  503: { code: 'EUNAVAILABLE', hint: 'Graph is temporarily unavailable: retry after the Retry-After interval.' },
  504: { code: 'EUNAVAILABLE', hint: 'Graph timed out: retry after the Retry-After interval.' },
};

/** What the SDK throws: GraphError, or the parsed error body for upload-session answers. */
interface GraphFailure {
  status?: number;
  graphCode?: string;
  message: string;
  retryAfter?: string | null;
}

function describe(error: unknown): GraphFailure {
  if (error !== null && typeof error === 'object') {
    const e = error as { statusCode?: unknown; code?: unknown; message?: unknown; headers?: { get?: (name: string) => string | null }; error?: { code?: unknown; message?: unknown } };
    if (e.error && typeof e.error === 'object') {
      return { graphCode: typeof e.error.code === 'string' ? e.error.code : undefined, message: typeof e.error.message === 'string' ? e.error.message : 'Graph returned an error' };
    }
    return {
      status: typeof e.statusCode === 'number' && e.statusCode > 0 ? e.statusCode : undefined,
      graphCode: typeof e.code === 'string' ? e.code : undefined,
      message: typeof e.message === 'string' && e.message ? e.message : 'Graph returned an error',
      retryAfter: typeof e.headers?.get === 'function' ? e.headers.get('Retry-After') : undefined,
    };
  }
  return { message: String(error) };
}

/** Retry-After is seconds or an HTTP date (RFC 9110 10.2.3). */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

export function translateGraphError(error: unknown, context: GraphErrorContext): MailError {
  if (error instanceof MailError) return error;
  const failure = describe(error);
  // Graph's message text is the provider's: it may echo what it was sent, so it passes `redact` like SMTP/IMAP/POP3 server text.
  const text = redact(failure.message);
  if (failure.status === undefined && (failure.graphCode === undefined || !(failure.graphCode in BY_GRAPH_CODE))) {
    // No HTTP answer at all: DNS, refused connection, TLS. The SDK keeps only fetch's message.
    return new MailError('ECONNECTION', `profile "${context.profile}": could not reach Graph: ${text}`, {
      profile: context.profile,
      providerCode: failure.graphCode,
      cause: error,
      hint: 'Check endpoints.graph (or the cloud) of this profile, outbound network access and TLS trust.',
    });
  }
  const translation =
    (failure.graphCode !== undefined ? BY_GRAPH_CODE[failure.graphCode] : undefined) ??
    (failure.status !== undefined ? (BY_STATUS[failure.status] ?? (failure.status >= 500 ? BY_STATUS[503] : undefined)) : undefined);
  const code: ErrorCode = translation?.code ?? 'EPROVIDER';
  const hint = translation === undefined ? 'Graph answered unexpectedly; the provider code and message say more.' : typeof translation.hint === 'string' ? translation.hint : translation.hint(context);
  const label = [failure.status, failure.graphCode].filter((v) => v !== undefined).join(' ');
  return new MailError(code, `profile "${context.profile}": Graph answered ${label}: ${text}`, {
    profile: context.profile,
    providerCode: failure.graphCode,
    retryAfter: parseRetryAfter(failure.retryAfter),
    cause: error,
    hint,
  });
}

/**
 * A delta or skip token Graph no longer honours: `410 Gone` with `syncStateNotFound`,
 * `resyncRequired` or, from Exchange, `SyncStateInvalid`/`ErrorInvalidSyncStateData`.
 * https://learn.microsoft.com/graph/delta-query-overview#synchronization-reset
 */
const EXPIRED_DELTA_CODES = new Set(['syncstatenotfound', 'resyncrequired', 'syncstateinvalid', 'errorinvalidsyncstatedata']);

export function isExpiredDeltaError(error: unknown): boolean {
  if (!(error instanceof MailError)) return false;
  if (error.providerCode !== undefined && EXPIRED_DELTA_CODES.has(error.providerCode.toLowerCase())) return true;
  const cause = error.cause as { statusCode?: unknown } | undefined;
  return cause?.statusCode === 410;
}
