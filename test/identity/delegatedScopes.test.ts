import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { consentScopes } from '../../shared/consent/scopes.js';
import { requireDelegated, tokenScopes } from '../../shared/identity/delegated.js';
import { mailErrorOf } from '../support/mailError.js';

function delegated(fields: Record<string, unknown>, auth: Record<string, unknown> = {}) {
  const p = parseProfiles({ profiles: { desk: {
    mailbox: 'desk@contoso.com', tenantId: 'contoso.onmicrosoft.com', clientId: 'desk-app',
    auth: { type: 'delegated', refreshToken: 'desk-refresh-token', ...auth },
    ...fields,
  } } }, 'test').profiles.get('desk')!;
  return requireDelegated(p);
}

const webhook = { webhook: { url: 'https://app.example/hook', signingSecret: 'hook-key' } };

describe('delegated profiles: which permissions consent asks for and which scopes tokens use', () => {
  it('consent asks for what the transports need: SMTP.Send and IMAP.AccessAsUser.All on Exchange', () => {
    const p = delegated({ send: { via: 'smtp' }, receive: { via: 'imap', deliver: webhook } });
    assert.deepEqual(consentScopes(p), ['https://outlook.office365.com/SMTP.Send', 'https://outlook.office365.com/IMAP.AccessAsUser.All']);
  });

  it('POP3 asks for POP.AccessAsUser.All; Graph for Mail.Send, and Mail.Read or Mail.ReadWrite by afterFetch', () => {
    assert.deepEqual(consentScopes(delegated({ receive: { via: 'pop3', deliver: webhook } })), ['https://outlook.office365.com/POP.AccessAsUser.All']);
    assert.deepEqual(consentScopes(delegated({ send: { via: 'graph' }, receive: { via: 'graph', afterFetch: 'markRead', deliver: webhook } })), ['https://graph.microsoft.com/Mail.Send', 'https://graph.microsoft.com/Mail.ReadWrite']);
    assert.deepEqual(consentScopes(delegated({ receive: { via: 'graph', deliver: webhook } })), ['https://graph.microsoft.com/Mail.Read']);
  });

  it('a sovereign cloud\'s resources are used', () => {
    assert.deepEqual(consentScopes(delegated({ cloud: 'usgov', send: { via: 'smtp' } })), ['https://outlook.office365.us/SMTP.Send']);
  });

  it('auth.scopes replaces the defaults, and token requests use its scopes of the requested resource', () => {
    const p = delegated({ send: { via: 'smtp' } }, { scopes: ['https://outlook.office365.com/SMTP.Send', 'https://graph.microsoft.com/User.Read'] });
    assert.deepEqual(consentScopes(p), ['https://outlook.office365.com/SMTP.Send', 'https://graph.microsoft.com/User.Read']);
    assert.deepEqual(tokenScopes(p, 'https://outlook.office365.com/.default'), ['https://outlook.office365.com/SMTP.Send']);
    assert.deepEqual(tokenScopes(p, 'https://graph.microsoft.com/.default'), ['https://graph.microsoft.com/User.Read']);
  });

  it('without auth.scopes a token request keeps the resource\'s .default', () => {
    const p = delegated({ send: { via: 'smtp' } });
    assert.deepEqual(tokenScopes(p, 'https://outlook.office365.com/.default'), ['https://outlook.office365.com/.default']);
  });

  it('the profile schema requires tenantId, clientId and refreshToken, takes no secret for a public client, and wants full scope URIs', () => {
    const error = (fields: Record<string, unknown>, auth: Record<string, unknown>) => mailErrorOf(() => parseProfiles({ profiles: { desk: { mailbox: 'desk@contoso.com', send: { via: 'smtp' }, ...fields, auth: { type: 'delegated', ...auth } } } }, 'test'));
    assert.equal(error({ clientId: 'a' }, { refreshToken: 'rt' }).field, 'tenantId');
    assert.equal(error({ tenantId: 't' }, { refreshToken: 'rt' }).field, 'clientId');
    assert.equal(error({ tenantId: 't', clientId: 'a' }, {}).field, 'auth.refreshToken');
    const scope = error({ tenantId: 't', clientId: 'a' }, { refreshToken: 'rt', scopes: ['SMTP.Send'] });
    assert.equal(scope.field, 'auth.scopes.0');
    assert.match(scope.message, /full scope URI/);
    assert.equal(delegated({ send: { via: 'smtp' } }).auth.secret, undefined);
  });

  it('an app-only profile has no consent to give: ECONSENT', () => {
    const p = parseProfiles({ profiles: { robot: { mailbox: 'r@contoso.com', tenantId: 't', clientId: 'c', auth: { type: 'clientSecret', secret: 's-1' }, send: { via: 'smtp' } } } }, 'test').profiles.get('robot')!;
    const error = mailErrorOf(() => requireDelegated(p));
    assert.equal(error.code, 'ECONSENT');
    assert.equal(error.field, 'auth.type');
  });
});
