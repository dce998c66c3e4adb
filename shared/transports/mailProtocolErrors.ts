import type { Profile } from '../config/profiles.js';

// What the IMAP and POP3 readers share when they translate errors.

/**
 * Socket, DNS and TLS failures as Node reports them (`err.code`), classified once for the
 * transports that open their own sockets (IMAP, POP3). A certificate problem is ETLS, so
 * that a person looks at trust (NODE_EXTRA_CA_CERTS, a proxy's certificate), not at the network.
 */
const TLS_CODES = new Set([
  'EPROTO',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'HOSTNAME_MISMATCH',
]);

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ECONNABORTED']);

export function socketErrorKind(error: unknown): 'ETLS' | 'ECONNECTION' | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return undefined;
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) return 'ETLS';
  if (CONNECTION_CODES.has(code)) return 'ECONNECTION';
  return undefined;
}

/**
 * The hint for a refused XOAUTH2 login. Exchange Online answers every cause with the same
 * "AUTHENTICATE failed." (IMAP) or "-ERR Authentication failure" (POP3), so the hint
 * lists them all. Source:
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
export function exchangeAuthHint(profile: Profile, protocol: 'IMAP' | 'POP'): string {
  const casSwitch = protocol === 'IMAP' ? 'ImapEnabled' : 'PopEnabled';
  return (
    `Exchange refused the token for ${profile.mailbox}: the app needs the Office 365 Exchange Online permission ${protocol}.AccessAsApp with admin consent, ` +
    `an Exchange service principal (New-ServicePrincipal) and FullAccess on the mailbox (Add-MailboxPermission -User <service principal id> -AccessRights FullAccess); ` +
    `${protocol} must also be enabled for the mailbox (Set-CASMailbox ${profile.mailbox} -${casSwitch} $true). The token must be for ${profile.endpoints.exchangeResource}.`
  );
}
