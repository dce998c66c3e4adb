import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { checkPermissions, readTokenClaims, scopesNeeded } from '../../shared/diagnose/permissions.js';

function jwt(payload: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ typ: 'JWT', alg: 'RS256' })}.${part(payload)}.c2lnbmF0dXJl`;
}

function profile(fields: Record<string, unknown>) {
  const deliver = { queue: { name: 'mail-in' } };
  const raw: Record<string, unknown> = { mailbox: 'ops@contoso.com', tenantId: 't', clientId: 'c', auth: { type: 'clientSecret', secret: 's' }, ...fields };
  if (raw.receive) (raw.receive as Record<string, unknown>).deliver = deliver;
  return parseProfiles({ profiles: { ops: raw } }, 'test').profiles.get('ops')!;
}

describe('which permissions a profile needs, and whether its token carries them', () => {
  it('SMTP send and IMAP receive need one Exchange token with SMTP.SendAsApp and IMAP.AccessAsApp', () => {
    const needs = scopesNeeded(profile({ send: { via: 'smtp' }, receive: { via: 'imap' } }));
    assert.deepEqual(needs.map((n) => [n.api, n.scope, n.needs.map((x) => x.anyOf)]), [
      ['Office 365 Exchange Online', 'https://outlook.office365.com/.default', [['SMTP.SendAsApp'], ['IMAP.AccessAsApp']]],
    ]);
  });

  it('Graph send and Graph receive that marks read need Mail.Send, a read permission for the Sent Items lookup, and Mail.ReadWrite; reading alone Mail.Read or Mail.ReadWrite', () => {
    assert.deepEqual(scopesNeeded(profile({ send: { via: 'graph' }, receive: { via: 'graph', afterFetch: 'markRead' } }))[0]!.needs.map((n) => n.anyOf), [['Mail.Send'], ['Mail.ReadBasic', 'Mail.Read', 'Mail.ReadWrite'], ['Mail.ReadWrite']]);
    assert.deepEqual(scopesNeeded(profile({ send: { via: 'graph', saveToSentItems: false } }))[0]!.needs.map((n) => n.anyOf), [['Mail.Send']], 'no copy in Sent Items: nothing to look up');
    assert.deepEqual(scopesNeeded(profile({ receive: { via: 'graph' } }))[0]!.needs.map((n) => n.anyOf), [['Mail.Read', 'Mail.ReadWrite']]);
  });

  it('Graph send with POP3 receive needs two tokens; a sovereign cloud uses its own resources', () => {
    const needs = scopesNeeded(profile({ cloud: 'usgov', send: { via: 'graph' }, receive: { via: 'pop3' } }));
    assert.deepEqual(needs.map((n) => [n.scope, n.needs.map((x) => x.anyOf[0])]), [
      ['https://graph.microsoft.us/.default', ['Mail.Send', 'Mail.ReadBasic']],
      ['https://outlook.office365.us/.default', ['POP.AccessAsApp']],
    ]);
  });

  it('the file transport needs no token', () => {
    assert.deepEqual(scopesNeeded(parseProfiles({ profiles: { f: { mailbox: 'a@b.cd', auth: { type: 'none' }, send: { via: 'file' } } } }, 't').profiles.get('f')!), []);
  });

  it('reads roles and scp from a JWT payload, and nothing from an opaque token', () => {
    assert.deepEqual(readTokenClaims(jwt({ aud: 'https://graph.microsoft.com', roles: ['Mail.Send', 'Mail.Read'] })), { roles: ['Mail.Send', 'Mail.Read'], scopes: [] });
    assert.deepEqual(readTokenClaims(jwt({ scp: 'SMTP.Send IMAP.AccessAsUser.All' })), { roles: [], scopes: ['SMTP.Send', 'IMAP.AccessAsUser.All'] });
    assert.equal(readTokenClaims('tok-opaque-token-value'), undefined);
    assert.equal(readTokenClaims('aaaa.bbbb.cccc'), undefined, 'three base64url parts that are not JSON');
    assert.equal(readTokenClaims(`${jwt({}).split('.')[0]}.${Buffer.from('"a string"').toString('base64url')}.x`), undefined, 'a payload that is not an object');
  });

  it('a token with every needed role reports them present and misses nothing', () => {
    const [need] = scopesNeeded(profile({ send: { via: 'graph' }, receive: { via: 'graph', afterFetch: 'move', moveTo: 'Done' } }));
    const check = checkPermissions(need!, readTokenClaims(jwt({ roles: ['Mail.ReadWrite', 'Mail.Send'] })));
    assert.equal(check.summary, 'JWT, roles Mail.ReadWrite, Mail.Send: Mail.Send, Mail.ReadWrite present');
    assert.deepEqual(check.missing, []);
    assert.equal(check.has('Mail.Send'), true);
  });

  it('a missing role becomes a hint naming the API and the application permission to grant', () => {
    const [need] = scopesNeeded(profile({ send: { via: 'smtp' }, receive: { via: 'pop3' } }));
    const check = checkPermissions(need!, readTokenClaims(jwt({ roles: ['SMTP.SendAsApp'] })));
    assert.deepEqual(check.missing, [
      'The Office 365 Exchange Online token has no POP.AccessAsApp role, needed to read mail over POP3: add the Office 365 Exchange Online application permission POP.AccessAsApp to the app registration and grant admin consent.',
    ]);
  });

  it('a Graph token without the role also names Exchange RBAC for Applications, which no token shows; the Exchange protocols\' hint does not', () => {
    const [graph] = scopesNeeded(profile({ send: { via: 'graph' } }));
    const check = checkPermissions(graph!, readTokenClaims(jwt({ roles: [] })));
    assert.equal(check.missing.length, 2, 'Mail.Send, and a read permission for the Sent Items lookup');
    assert.match(check.missing[0]!, /no Mail\.Send role.*RBAC for Applications, role "Application Mail\.Send" scoped to the mailbox.*connection steps below test the grant/);
    const [exchange] = scopesNeeded(profile({ send: { via: 'smtp' } }));
    assert.doesNotMatch(checkPermissions(exchange!, readTokenClaims(jwt({ roles: [] }))).missing[0]!, /RBAC/);
  });

  it('a delegated token (scp, no roles) is called out: the profile needs an app-only token', () => {
    const [need] = scopesNeeded(profile({ send: { via: 'smtp' } }));
    const check = checkPermissions(need!, readTokenClaims(jwt({ scp: 'SMTP.Send' })));
    assert.equal(check.summary, 'JWT, no roles, scp SMTP.Send');
    assert.match(check.missing[0]!, /no SMTP\.SendAsApp role.*delegated scopes: the profile needs an app-only token/);
  });

  it('an opaque token is reported as unreadable, not as missing permissions', () => {
    const [need] = scopesNeeded(profile({ send: { via: 'graph' } }));
    const check = checkPermissions(need!, undefined);
    assert.match(check.summary, /^not a JWT/);
    assert.deepEqual(check.missing, []);
    assert.equal(check.has('Mail.Send'), false);
  });
});
