import type { Profile } from '../../config/profiles.js';
import { MailError, type ErrorCode } from '../../errors.js';
import { redact } from '../../redact.js';
import { exchangeAuthHint, socketErrorKind } from '../mailProtocolErrors.js';
import { Pop3CommandError } from './pop3Client.js';

/** Translates a POP3 client error into a MailError, once, at this edge. Server text passes `redact`. */
export function translatePop3Error(profile: Profile, error: unknown, operation: string): MailError {
  if (error instanceof MailError) return error;
  const { host, port } = profile.endpoints.pop3;
  const text = redact(error instanceof Error ? error.message : String(error));
  const make = (code: ErrorCode, hint: string, extra: { retryAfter?: number; providerCode?: string } = {}) =>
    new MailError(code, `profile "${profile.name}": POP3 ${operation} failed: ${text}`, { profile: profile.name, hint, cause: error, ...extra });

  if (error instanceof Pop3CommandError) {
    const responseCode = error.responseCode;
    // RFC 3206: SYS/TEMP and IN-USE are transient; LOGIN-DELAY asks for fewer logins (RFC 2449).
    if (responseCode === 'LOGIN-DELAY') return make('ETHROTTLED', 'The server allows fewer logins: poll this mailbox less often.', { retryAfter: 300, providerCode: responseCode });
    if (responseCode === 'SYS/TEMP' || responseCode === 'IN-USE') {
      return make('EUNAVAILABLE', 'The POP3 server is temporarily unable to serve this mailbox (another POP3 session may hold it): retry later.', { retryAfter: 60, providerCode: responseCode });
    }
    if (error.command === 'AUTH') return make('EAUTH', exchangeAuthHint(profile, 'POP'), { providerCode: responseCode });
    // Exchange Online's answer when it sheds load: "-ERR Server Unavailable. 21".
    if (/unavailable/i.test(error.response)) return make('EUNAVAILABLE', `The POP3 server at ${host}:${port} is unavailable: retry later.`, { retryAfter: 60, providerCode: responseCode });
    return make('EPROVIDER', 'Unexpected answer from the POP3 server: see the server text.', { providerCode: responseCode });
  }
  const kind = socketErrorKind(error);
  if (kind === 'ETLS') return make('ETLS', `TLS with ${host}:${port} failed: the server must present a certificate this host trusts (NODE_EXTRA_CA_CERTS for a private CA or a TLS-inspecting proxy).`);
  if (kind === 'ECONNECTION') {
    return make('ECONNECTION', `Could not talk to ${host}:${port}: check endpoints.pop3, DNS, and that outbound port ${port} is open from this host.`, { retryAfter: 30 });
  }
  return make('EPROVIDER', 'Unexpected failure talking to the POP3 server.');
}
