import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { Pop3CommandError } from '../../shared/transports/pop3/pop3Client.js';
import { translatePop3Error } from '../../shared/transports/pop3/pop3Errors.js';

const profile = parseProfiles(
  { profiles: { support: { mailbox: 'support@contoso.com', tenantId: 't', clientId: 'c', auth: { type: 'clientSecret', secret: 's' }, receive: { via: 'pop3', deliver: { queue: { name: 'mail-incoming' } } } } } },
  'test',
).profiles.get('support')!;

describe('POP3 errors are translated once, at the transport edge', () => {
  it('a refused AUTH is EAUTH naming POP.AccessAsApp and PopEnabled', () => {
    const error = translatePop3Error(profile, new Pop3CommandError('AUTH', 'Authentication failure: unknown user name or bad password.'), 'login');
    assert.equal(error.code, 'EAUTH');
    assert.match(error.hint ?? '', /POP\.AccessAsApp/);
    assert.match(error.hint ?? '', /-PopEnabled/);
  });

  it('RFC 2449/3206 response codes: LOGIN-DELAY is ETHROTTLED, SYS/TEMP and IN-USE are EUNAVAILABLE, even on AUTH', () => {
    assert.equal(translatePop3Error(profile, new Pop3CommandError('AUTH', '[LOGIN-DELAY] wait'), 'login').code, 'ETHROTTLED');
    assert.equal(translatePop3Error(profile, new Pop3CommandError('AUTH', '[SYS/TEMP] try later'), 'login').code, 'EUNAVAILABLE');
    assert.equal(translatePop3Error(profile, new Pop3CommandError('UIDL', '[IN-USE] mailbox locked'), 'UIDL').code, 'EUNAVAILABLE');
  });

  it("Exchange's load-shedding answer is EUNAVAILABLE; another -ERR is EPROVIDER", () => {
    assert.equal(translatePop3Error(profile, new Pop3CommandError('RETR', 'Server Unavailable. 21'), 'RETR').code, 'EUNAVAILABLE');
    assert.equal(translatePop3Error(profile, new Pop3CommandError('RETR', 'No such message.'), 'RETR').code, 'EPROVIDER');
  });

  it('socket failures are ECONNECTION, certificate failures ETLS', () => {
    assert.equal(translatePop3Error(profile, Object.assign(new Error('x'), { code: 'ETIMEDOUT' }), 'RETR').code, 'ECONNECTION');
    assert.equal(translatePop3Error(profile, Object.assign(new Error('x'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }), 'connect').code, 'ETLS');
  });
});
