import type { NodemailerError } from 'nodemailer/lib/errors';
import type { Profile } from '../../config/profiles.js';
import { MailError, type ErrorCode } from '../../errors.js';
import type { OutgoingMessage } from '../../mail/outgoing.js';
import { redact } from '../../redact.js';
import { socketErrorKind } from '../mailProtocolErrors.js';
import { describeSmtpSecurity, smtpSecurity, type SmtpSecurity } from './security.js';

/**
 * Carries a token failure through nodemailer, which re-labels any error raised while it
 * authenticates as EAUTH (it sets `err.code` on the error it is given): the MailError
 * from the token provider travels inside, untouched.
 */
export class TokenFailure extends Error {
  constructor(readonly failure: unknown) {
    super('could not obtain an access token for SMTP');
  }
}

interface Reply {
  /** nodemailer's code: EAUTH, ETLS, ECONNECTION, EENVELOPE, EMESSAGE, ... */
  code?: string;
  responseCode?: number;
  /** RFC 3463 enhanced status code from the reply text, e.g. 5.7.139 */
  enhanced?: string;
  /** The server's reply text, redacted. */
  text: string;
  command?: string;
  /** The system or OpenSSL code beneath nodemailer's (ESOCKET): ERR_SSL_WRONG_VERSION_NUMBER, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ECONNREFUSED... */
  originalCode?: string;
  /** Which of nodemailer's timeouts an ETIMEDOUT is: CONNECT_TIMEOUT, GREETING_TIMEOUT, SOCKET_TIMEOUT. */
  timeoutType?: string;
  /** OpenSSL's reason for a TLS failure, e.g. "wrong version number". */
  reason?: string;
  /** The profile's smtpSecurity, under which the error happened. */
  security: SmtpSecurity;
}

interface Rule {
  when: (reply: Reply) => boolean;
  code: ErrorCode;
  hint: (profile: Profile) => string;
  /** Seconds a caller should wait: SMTP has no Retry-After, so these follow Exchange Online's documented limits. */
  retryAfter?: number;
  field?: string;
  /** The message after `profile "<name>": ` when the server's text would not say what happened; default: command and reply text. */
  message?: (profile: Profile, reply: Reply) => string;
}

const enhanced = (...codes: string[]) => (r: Reply) => r.enhanced !== undefined && codes.includes(r.enhanced);
const says = (pattern: RegExp) => (r: Reply) => pattern.test(r.text);
const transient = (r: Reply) => r.responseCode !== undefined && r.responseCode >= 400 && r.responseCode < 500;
const endpoint = (p: Profile) => `${p.endpoints.smtp.host}:${p.endpoints.smtp.port}`;

/**
 * What OpenSSL reports when the first bytes from the server are no TLS record: a plain-text
 * "220 ..." greeting read as one ("wrong version number", or a record length from its text).
 */
const PLAIN_TEXT_ANSWER = new Set(['ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_UNKNOWN_PROTOCOL']);

function tlsHint(p: Profile): string {
  return smtpSecurity(p) === 'implicit'
    ? `TLS with ${endpoint(p)} failed (${describeSmtpSecurity(p)}: TLS from the first byte); mail is never sent in plain text: the server must present a certificate this host trusts (NODE_EXTRA_CA_CERTS for a private CA).`
    : `STARTTLS with ${endpoint(p)} failed; mail is never sent in plain text: the server must offer STARTTLS with a certificate this host trusts (NODE_EXTRA_CA_CERTS for a private CA).`;
}

/**
 * Exchange Online's SMTP client-submission replies, first match wins. Sources:
 * https://learn.microsoft.com/exchange/clients-and-mobile-in-exchange-online/authenticated-client-smtp-submission
 * https://learn.microsoft.com/exchange/mail-flow-best-practices/non-delivery-reports-in-exchange-online/non-delivery-reports-in-exchange-online
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
const RULES: Rule[] = [
  {
    when: enhanced('5.7.139'),
    code: 'EAUTH',
    hint: () =>
      'SMTP AUTH is disabled for the tenant or mailbox (Set-CASMailbox -SmtpClientAuthenticationDisabled $false, or the tenant setting Set-TransportConfig -SmtpClientAuthenticationDisabled $false), or Security Defaults block it.',
  },
  {
    when: (r) => enhanced('5.7.3', '5.7.8')(r) || (r.code === 'EAUTH' && r.responseCode === 535),
    code: 'EAUTH',
    hint: (p) =>
      `Exchange refused the token: it must be an app token for ${p.endpoints.exchangeResource} (the profile's cloud), the app needs the Office 365 Exchange Online permission SMTP.SendAsApp with admin consent, ` +
      `an Exchange service principal for the app (New-ServicePrincipal) and FullAccess on ${p.mailbox} (Add-MailboxPermission).`,
  },
  {
    when: enhanced('5.7.57'),
    code: 'EAUTH',
    hint: () => 'The server did not consider the session authenticated: the transport must authenticate with XOAUTH2 before MAIL FROM.',
  },
  {
    when: (r) => enhanced('5.7.60')(r) || says(/SendAsDenied/i)(r),
    code: 'ESEND_DENIED',
    field: 'from',
    hint: (p) => `${p.mailbox} may not send as this From address: grant Send As (Add-RecipientPermission -AccessRights SendAs) or send from the mailbox itself.`,
  },
  {
    when: (r) => enhanced('5.7.705', '5.7.708', '5.7.750', '5.1.8')(r) || says(/OutboundSpamException/i)(r),
    code: 'ESEND_DENIED',
    hint: () =>
      'Exchange Online blocks sending for this tenant or mailbox (outbound spam threshold, tenant or IP reputation, or an unregistered domain): check Restricted entities in the Microsoft Defender portal, or contact Microsoft support.',
  },
  {
    when: says(/SubmissionQuotaExceeded/i),
    code: 'ETHROTTLED',
    hint: () => 'The mailbox reached its recipient rate limit (Exchange Online: 10,000 recipients a day): spread the sends over more time or mailboxes.',
  },
  {
    when: (r) => enhanced('4.3.2')(r) && (r.responseCode === 432 || says(/thread limit|concurren/i)(r)),
    code: 'ETHROTTLED',
    retryAfter: 60,
    hint: () => 'Too many concurrent SMTP connections for this mailbox (Exchange Online allows 3): lower the concurrency of sends for this profile.',
  },
  {
    when: enhanced('4.7.500', '4.7.501', '4.7.502'),
    code: 'ETHROTTLED',
    retryAfter: 60,
    hint: () => 'Exchange Online throttles this sender: retry later, and send fewer messages per minute (client submission allows 30 a minute per mailbox).',
  },
  {
    when: (r) => enhanced('5.3.4', '5.2.3')(r) || r.responseCode === 552,
    code: 'ETOO_LARGE',
    field: 'attachments',
    hint: () => 'The message exceeds the server\'s size limit (Exchange Online: 35 MB by default, configurable up to 150 MB): send smaller attachments or a link.',
  },
  {
    when: enhanced('5.2.2'),
    code: 'EMAILBOX',
    hint: (p) => `The mailbox ${p.mailbox} is full: free space or raise its quota.`,
  },
  {
    when: says(/STOREDRV/i),
    code: 'EMAILBOX',
    hint: (p) => `The mailbox ${p.mailbox} could not submit the message: check that it exists, is licensed for Exchange Online and is not over quota.`,
  },
  {
    when: (r) => r.code === 'EAUTH' || r.code === 'ENOAUTH',
    code: 'EAUTH',
    hint: (p) => `XOAUTH2 authentication with ${p.endpoints.smtp.host}:${p.endpoints.smtp.port} failed: check that the server offers AUTH XOAUTH2 (Exchange Online does on port 587 after STARTTLS).`,
  },
  {
    // Implicit TLS against a STARTTLS port: the handshake fails at once on the plain-text greeting.
    when: (r) => r.security === 'implicit' && r.code === 'ESOCKET' && PLAIN_TEXT_ANSWER.has(r.originalCode ?? ''),
    code: 'ETLS',
    message: (p, r) => `the TLS handshake with ${endpoint(p)} failed: ${r.reason ?? r.originalCode}: the server answered in plain text`,
    hint: (p) =>
      `${endpoint(p)} speaks plain SMTP first, as a STARTTLS port (587) does, but ${describeSmtpSecurity(p)} (TLS from the first byte): ` +
      `set send.smtpSecurity to "starttls" for port ${p.endpoints.smtp.port}, or point endpoints.smtp at the server's implicit-TLS port (465). Nothing was sent.`,
  },
  {
    // STARTTLS against an implicit-TLS port: the server waits silently for a TLS handshake, so
    // no greeting comes before nodemailer's greetingTimeout. Possibly just a slow server: retried.
    when: (r) => r.security === 'starttls' && r.code === 'ETIMEDOUT' && r.timeoutType === 'GREETING_TIMEOUT',
    code: 'ECONNECTION',
    retryAfter: 30,
    message: (p) => `${endpoint(p)} accepted the connection but sent no SMTP greeting`,
    hint: (p) =>
      `A server that stays silent after the connect is usually an implicit-TLS port (465) waiting for a TLS handshake, but ${describeSmtpSecurity(p)} (plain connect, then STARTTLS): ` +
      `set send.smtpSecurity to "implicit" for port ${p.endpoints.smtp.port}, or point endpoints.smtp at the server's STARTTLS port (587). Nothing was sent.`,
  },
  {
    when: (r) => r.code === 'ETLS' || r.code === 'EREQUIRETLS',
    code: 'ETLS',
    hint: tlsHint,
  },
  {
    // Under implicit TLS the handshake is part of connecting: an untrusted certificate arrives as a socket error.
    when: (r) => r.code === 'ESOCKET' && socketErrorKind({ code: r.originalCode }) === 'ETLS',
    code: 'ETLS',
    message: (p, r) => `the TLS handshake with ${endpoint(p)} failed: ${r.text} (${r.originalCode})`,
    hint: tlsHint,
  },
  {
    when: (r) => ['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EDNS', 'EPROXY'].includes(r.code ?? '') && r.responseCode === undefined,
    code: 'ECONNECTION',
    retryAfter: 30,
    hint: (p) => `Could not reach ${p.endpoints.smtp.host}:${p.endpoints.smtp.port}: check endpoints.smtp, DNS, and that outbound port ${p.endpoints.smtp.port} is open from this host.`,
  },
  {
    when: (r) => r.responseCode === 421 || transient(r),
    code: 'EUNAVAILABLE',
    retryAfter: 60,
    hint: () => 'The SMTP server answered with a temporary failure: retry later.',
  },
];

/** What nodemailer (and Node's TLS layer beneath it) put on the error beyond NodemailerError's type. */
interface ConnectionDetails {
  originalCode?: unknown;
  timeoutType?: unknown;
  reason?: unknown;
}

const stringOrUndefined = (value: unknown) => (typeof value === 'string' ? value : undefined);

function parseReply(error: NodemailerError & ConnectionDetails, security: SmtpSecurity): Reply {
  const text = redact(error.response ?? error.message);
  return {
    code: error.code,
    responseCode: error.responseCode,
    enhanced: /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(error.response ?? '')?.[1],
    text,
    command: error.command,
    originalCode: stringOrUndefined(error.originalCode),
    timeoutType: stringOrUndefined(error.timeoutType),
    reason: stringOrUndefined(error.reason),
    security,
  };
}

/** Which field of the message a rejected recipient came from, so a 4xx problem can name it. */
function recipientField(message: OutgoingMessage | undefined, address: string | undefined): string {
  const wanted = address?.toLowerCase();
  for (const field of ['to', 'cc', 'bcc'] as const) {
    if (message?.[field].some((a) => a.address.toLowerCase() === wanted)) return field;
  }
  return 'to';
}

/**
 * Translates a nodemailer error into a MailError, once, at this edge. Text from the server passes `redact`.
 * `message` is undefined for a session that sends nothing (the connection test's verify).
 */
export function translateSmtpError(profile: Profile, message: OutgoingMessage | undefined, error: unknown): MailError {
  if (error instanceof MailError) return error;
  if (error instanceof TokenFailure) return error.failure instanceof MailError ? error.failure : new MailError('ETOKEN', `profile "${profile.name}": ${redact(String(error.failure))}`, { profile: profile.name });
  if (!(error instanceof Error)) return new MailError('EPROVIDER', `profile "${profile.name}": SMTP send failed: ${redact(String(error))}`, { profile: profile.name });
  const nodemailerError = error as NodemailerError;
  const reply = parseReply(nodemailerError, smtpSecurity(profile));
  const what = reply.command ? `${reply.command}: ${reply.text}` : reply.text;
  const options = { profile: profile.name, providerCode: reply.enhanced ?? (reply.responseCode === undefined ? reply.code : String(reply.responseCode)), cause: error };

  if (reply.command === 'RCPT TO' && reply.code === 'EENVELOPE' && !transient(reply)) {
    const rejected = nodemailerError.rejected ?? [];
    return new MailError('EREJECTED', `profile "${profile.name}": the SMTP server rejected ${rejected.length > 1 ? 'every recipient' : 'the recipient'} ${rejected.join(', ')}: ${reply.text}`, {
      ...options,
      field: recipientField(message, rejected[0]),
      hint: 'Check the recipient addresses; Exchange Online refuses unknown internal recipients and may refuse external ones by policy.',
    });
  }
  const rule = RULES.find((r) => r.when(reply));
  if (rule) {
    return new MailError(rule.code, `profile "${profile.name}": ${rule.message?.(profile, reply) ?? what}`, { ...options, hint: rule.hint(profile), field: rule.field, retryAfter: rule.retryAfter });
  }
  if (reply.code === 'EENVELOPE' && reply.command === 'MAIL FROM') {
    return new MailError('EREJECTED', `profile "${profile.name}": the SMTP server refused the sender: ${reply.text}`, { ...options, field: 'from', hint: 'Send from the profile\'s mailbox or an address it may send as.' });
  }
  if (reply.code === 'EENVELOPE' || reply.code === 'EMESSAGE') {
    return new MailError('EREJECTED', `profile "${profile.name}": the SMTP server rejected the message: ${what}`, { ...options, hint: 'Read the server\'s reply above; the message was not sent.' });
  }
  return new MailError('EPROVIDER', `profile "${profile.name}": SMTP send failed: ${what}`, { ...options, hint: 'Unexpected answer from the SMTP server: see providerCode and the server reply.' });
}
