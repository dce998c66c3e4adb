import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailError } from '../../shared/errors.js';
import { registerSensitive } from '../../shared/redact.js';
import { translateImapError } from '../../shared/transports/imap/imapErrors.js';

const profile = parseProfiles(
  { profiles: { support: { mailbox: 'support@contoso.com', tenantId: 't', clientId: 'c', auth: { type: 'clientSecret', secret: 's' }, receive: { via: 'imap', deliver: { queue: { name: 'mail-incoming' } } } } } },
  'test',
).profiles.get('support')!;

/** imapflow's errors as it raises them (shapes from imapflow 2.x: errors.ts, imap-flow.ts, commands/authenticate.ts). */
const imapflowError = (fields: Record<string, unknown>) => Object.assign(new Error(String(fields.message ?? 'Command failed')), fields);

describe('IMAP errors are translated once, at the transport edge', () => {
  it('a refused AUTHENTICATE is EAUTH with the Exchange causes in the hint', () => {
    const error = translateImapError(profile, imapflowError({ authenticationFailed: true, response: 'AUTHENTICATE failed.' }), 'login');
    assert.equal(error.code, 'EAUTH');
    assert.match(error.message, /AUTHENTICATE failed/);
    for (const cause of [/IMAP\.AccessAsApp/, /New-ServicePrincipal/, /Add-MailboxPermission/, /Set-CASMailbox support@contoso\.com -ImapEnabled/, /https:\/\/outlook\.office365\.com/]) assert.match(error.hint ?? '', cause);
  });

  it("Office 365's throttling answer is ETHROTTLED with its backoff as Retry-After seconds", () => {
    const error = translateImapError(profile, imapflowError({ code: 'ETHROTTLE', throttleReset: 92415, response: 'Request is throttled. Suggested Backoff Time: 92415 milliseconds' }), 'fetch');
    assert.equal(error.code, 'ETHROTTLED');
    assert.equal(error.retryAfter, 93);
    assert.equal(error.status, 429);
  });

  it('a [LIMIT] response code is ETHROTTLED', () => {
    assert.equal(translateImapError(profile, imapflowError({ serverResponseCode: 'LIMIT', response: 'Too many connections' }), 'login').code, 'ETHROTTLED');
  });

  it('a BYE from the server is EUNAVAILABLE, with the BYE text', () => {
    const error = translateImapError(profile, imapflowError({ code: 'NoConnection', message: 'Connection not available', reason: 'Server Unavailable. 15' }), 'search');
    assert.equal(error.code, 'EUNAVAILABLE');
    assert.match(error.message, /Server Unavailable\. 15/);
    assert.equal(error.retryAfter, 60);
  });

  it('a connection that drops or times out is ECONNECTION; a certificate problem is ETLS', () => {
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'NoConnection']) {
      assert.equal(translateImapError(profile, imapflowError({ code }), 'login').code, 'ECONNECTION', code);
    }
    for (const code of ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT']) {
      assert.equal(translateImapError(profile, imapflowError({ code }), 'login').code, 'ETLS', code);
    }
  });

  it('a missing folder is EMAILBOX; anything else is EPROVIDER; a MailError passes through', () => {
    assert.equal(translateImapError(profile, imapflowError({ mailboxMissing: true }), 'select').code, 'EMAILBOX');
    assert.equal(translateImapError(profile, imapflowError({ response: 'something odd' }), 'fetch').code, 'EPROVIDER');
    const original = new MailError('ETOKEN', 'no token');
    assert.equal(translateImapError(profile, original, 'login'), original);
  });

  it('a registered secret in the server text does not reach the error message', () => {
    registerSensitive('tok-very-secret-value');
    const error = translateImapError(profile, imapflowError({ response: 'echo tok-very-secret-value' }), 'fetch');
    assert.doesNotMatch(error.message, /tok-very-secret-value/);
  });
});
