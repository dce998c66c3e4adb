import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LOCAL_PROFILE_NAME } from '../../shared/config/profiles.js';
import { loadProfiles, parseProfiles } from '../../shared/profiles/load.js';
import { mailErrorOf } from '../support/mailError.js';

const valid = {
  mailbox: 'support@contoso.com',
  tenantId: 'contoso.onmicrosoft.com',
  clientId: '00000000-0000-0000-0000-000000000001',
  auth: { type: 'clientSecret', secret: 'support-client-secret' },
  send: { via: 'graph' },
};

/** The ECONFIG error for one profile named `helpdesk` built from the valid one with `change` applied. */
function configError(change: (p: Record<string, unknown>) => void) {
  const profile: Record<string, unknown> = structuredClone(valid);
  change(profile);
  return mailErrorOf(() => parseProfiles({ profiles: { ok: valid, helpdesk: profile } }, 'test'));
}

describe('profile validation names the profile and the field', () => {
  const cases: Array<[string, (p: Record<string, unknown>) => void, string, RegExp]> = [
    ['a missing mailbox', (p) => delete p.mailbox, 'mailbox', /must be an e-mail address/],
    ['a mailbox that is not an address', (p) => (p.mailbox = 'support'), 'mailbox', /must be an e-mail address/],
    ['an unknown auth type', (p) => (p.auth = { type: 'password', secret: 'x' }), 'auth.type', /clientSecret/],
    ['a missing auth section', (p) => delete p.auth, 'auth', /expected object/],
    ['a clientSecret without a secret name', (p) => (p.auth = { type: 'clientSecret' }), 'auth.secret', /expected string/],
    ['a secret name Key Vault cannot hold', (p) => (p.auth = { type: 'clientSecret', secret: 'support_secret' }), 'auth.secret', /letters, digits and dashes/],
    ['a secret value where a secret name belongs', (p) => (p.auth = { type: 'clientSecret', secret: 'abc~DEF.123' }), 'auth.secret', /secret name/],
    ['a certificate without a certificate name', (p) => (p.auth = { type: 'certificate' }), 'auth.certificate', /expected string/],
    ['an unknown key in auth', (p) => (p.auth = { type: 'managedIdentity', clientSecret: 'x' }), 'auth.clientSecret', /Unrecognized key/],
    ['a tenantId with a path in it', (p) => (p.tenantId = 'contoso/oauth2?x=1'), 'tenantId', /GUID or a domain/],
    ['clientSecret without tenantId', (p) => delete p.tenantId, 'tenantId', /required for auth type clientSecret/],
    ['clientSecret without clientId', (p) => delete p.clientId, 'clientId', /required for auth type clientSecret/],
    ['auth none with a remote transport', (p) => (p.auth = { type: 'none' }), 'auth.type', /only for the file transport/],
    ['neither send nor receive', (p) => delete p.send, 'send', /send or a receive section/],
    ['an unknown send transport', (p) => (p.send = { via: 'pigeon' }), 'send.via', /graph/],
    ['a field of another transport (the file outbox folder on a Graph sender)', (p) => (p.send = { via: 'graph', folder: 'outbox' }), 'send.folder', /Unrecognized key/],
    ['an allowedFrom entry that is neither address nor *@domain', (p) => (p.send = { via: 'graph', allowedFrom: ['a@contoso.com', 'contoso.com'] }), 'send.allowedFrom.1', /address or \*@domain/],
    ['a negative size limit', (p) => (p.send = { via: 'graph', maxBytes: -1 }), 'send.maxBytes', /too small|>0/],
    ['an unknown cloud', (p) => (p.cloud = 'germany'), 'cloud', /public/],
    ['an http authority', (p) => (p.endpoints = { authority: 'http://login.example.test' }), 'endpoints.authority', /https URL/],
    ['an smtp endpoint without a port', (p) => (p.endpoints = { smtp: 'smtp.example.test' }), 'endpoints.smtp', /host:port/],
    ['an unknown endpoint', (p) => (p.endpoints = { ews: 'https://ews.example.test' }), 'endpoints.ews', /Unrecognized key/],
    ['an unknown top-level key', (p) => (p.colour = 'red'), 'colour', /Unrecognized key/],
    ['move without moveTo', (p) => (p.receive = { via: 'imap', afterFetch: 'move', deliver: { queue: { name: 'mail-in' } } }), 'receive.moveTo', /required when afterFetch is "move"/],
    ['a deliver section with no sink', (p) => (p.receive = { via: 'imap', deliver: {} }), 'receive.deliver', /webhook.*queue/],
    ['a webhook url that is not a URL', (p) => (p.receive = { via: 'graph', deliver: { webhook: { url: 'hooks', signingSecret: 'hook-key' } } }), 'receive.deliver.webhook.url', /URL/],
    ['a webhook over plain http to another host', (p) => (p.receive = { via: 'graph', deliver: { webhook: { url: 'http://hooks.example.com/mail', signingSecret: 'hook-key' } } }), 'receive.deliver.webhook.url', /https URL/],
    ['a data: webhook', (p) => (p.receive = { via: 'graph', deliver: { webhook: { url: 'data:text/plain,hi', signingSecret: 'hook-key' } } }), 'receive.deliver.webhook.url', /https URL/],
    ['an ftp: webhook', (p) => (p.receive = { via: 'graph', deliver: { webhook: { url: 'ftp://hooks.example.com/', signingSecret: 'hook-key' } } }), 'receive.deliver.webhook.url', /https URL/],
    ['a queue name Azure Storage rejects', (p) => (p.receive = { via: 'graph', deliver: { queue: { name: 'Mail_In' } } }), 'receive.deliver.queue.name', /storage queue name/],
  ];
  for (const [what, change, field, message] of cases) {
    it(`${what} is ECONFIG on field ${field}`, () => {
      const error = configError(change);
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.status, 500);
      assert.equal(error.profile, 'helpdesk');
      assert.equal(error.field, field);
      assert.match(error.message, /profile "helpdesk"/);
      assert.ok(error.message.includes(field), `message "${error.message}" does not name ${field}`);
      assert.match(error.message, message);
      assert.equal(error.hint, `Correct profiles.helpdesk.${field} in the profiles document.`);
    });
  }

  it('a webhook is https, or plain http only to this machine (development)', () => {
    const withHook = (url: string) => parseProfiles({ profiles: { helpdesk: { ...valid, receive: { via: 'graph', deliver: { webhook: { url, signingSecret: 'hook-key' } } } } } }, 'test').profiles.get('helpdesk')!;
    for (const url of ['https://hooks.example.com/mail', 'http://127.0.0.1:8080/hooks', 'http://localhost/hooks', 'http://[::1]:9/hooks']) {
      assert.equal((withHook(url).receive!.deliver as { webhook: { url: string } }).webhook.url, url);
    }
  });

  it('a profile that is not an object names the profile', () => {
    const error = mailErrorOf(() => parseProfiles({ profiles: { helpdesk: 'support@contoso.com' } }, 'test'));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.profile, 'helpdesk');
    assert.match(error.message, /profile "helpdesk": \(profile\) .*expected object/);
  });

  it('a profile name with a space is ECONFIG on profiles.<name>', () => {
    const error = mailErrorOf(() => parseProfiles({ profiles: { 'help desk': valid } }, 'MAIL_PROFILES'));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.field, 'profiles.help desk');
    assert.match(error.message, /^MAIL_PROFILES: /);
    assert.match(error.hint ?? '', /letters, digits, dashes or underscores/);
  });

  it('a document without "profiles" or with none defined is ECONFIG on profiles', () => {
    for (const document of [{}, [], { profiles: {} }, { profile: { helpdesk: valid } }]) {
      const error = mailErrorOf(() => parseProfiles(document, 'test'));
      assert.equal(error.code, 'ECONFIG');
      assert.match(error.field ?? '', /^profile/);
    }
  });

  it('a valid profile gets defaults: public cloud endpoints, allowedFrom = its mailbox (lower-cased), saveToSentItems', () => {
    const set = parseProfiles({ profiles: { helpdesk: { ...valid, mailbox: 'Support@Contoso.com' } } }, 'test');
    const p = set.profiles.get('helpdesk')!;
    assert.equal(p.name, 'helpdesk');
    assert.equal(p.cloud, 'public');
    assert.deepEqual(p.allowedFrom, ['support@contoso.com']);
    assert.equal(p.send?.saveToSentItems, true);
    assert.equal(p.endpoints.graph, 'https://graph.microsoft.com');
  });
});

describe('where the profiles come from', () => {
  const document = (name: string) => JSON.stringify({ profiles: { [name]: valid } });

  it('MAIL_PROFILES holds the JSON itself', () => {
    const set = loadProfiles({ MAIL_PROFILES: document('from-env') });
    assert.equal(set.source, 'MAIL_PROFILES');
    assert.deepEqual([...set.profiles.keys()], ['from-env']);
  });

  it('MAIL_PROFILES_FILE names a file, used when MAIL_PROFILES is not set', (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'profiles-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'profiles.json');
    writeFileSync(file, document('from-file'));

    const fromFile = loadProfiles({ MAIL_PROFILES_FILE: file });
    assert.equal(fromFile.source, file);
    assert.deepEqual([...fromFile.profiles.keys()], ['from-file']);

    const both = loadProfiles({ MAIL_PROFILES: document('from-env'), MAIL_PROFILES_FILE: file });
    assert.deepEqual([...both.profiles.keys()], ['from-env'], 'MAIL_PROFILES takes precedence over MAIL_PROFILES_FILE');
  });

  it('a MAIL_PROFILES_FILE that does not exist is ECONFIG on MAIL_PROFILES_FILE', () => {
    const error = mailErrorOf(() => loadProfiles({ MAIL_PROFILES_FILE: path.join(os.tmpdir(), 'no-such-dir-for-profiles', 'profiles.json') }));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.field, 'MAIL_PROFILES_FILE');
    assert.match(error.message, /does not exist/);
  });

  it('a MAIL_PROFILES_FILE that names a folder is ECONFIG on MAIL_PROFILES_FILE', () => {
    const error = mailErrorOf(() => loadProfiles({ MAIL_PROFILES_FILE: os.tmpdir() }));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.field, 'MAIL_PROFILES_FILE');
    assert.match(error.message, /cannot be read \(EISDIR\)/);
  });

  it('bad JSON is ECONFIG naming the setting or the file', (t) => {
    const fromEnv = mailErrorOf(() => loadProfiles({ MAIL_PROFILES: '{ "profiles": { ' }));
    assert.equal(fromEnv.code, 'ECONFIG');
    assert.equal(fromEnv.field, 'MAIL_PROFILES');
    assert.match(fromEnv.message, /MAIL_PROFILES is not valid JSON/);

    const dir = mkdtempSync(path.join(os.tmpdir(), 'profiles-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'broken.json');
    writeFileSync(file, '{ profiles: {} }');
    const fromFile = mailErrorOf(() => loadProfiles({ MAIL_PROFILES_FILE: file }));
    assert.equal(fromFile.code, 'ECONFIG');
    assert.equal(fromFile.field, file);
    assert.match(fromFile.message, /is not valid JSON/);
  });

  it('a blank MAIL_PROFILES counts as not set', () => {
    assert.equal(loadProfiles({ MAIL_PROFILES: '   ' }).source, 'built-in');
  });

  it('with nothing configured the built-in local profile sends and receives through the file transport under MAIL_DIR', (t) => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mail-dir-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const set = loadProfiles({ MAIL_DIR: dir });
    assert.equal(set.source, 'built-in');
    assert.deepEqual([...set.profiles.keys()], [LOCAL_PROFILE_NAME]);
    const local = set.profiles.get(LOCAL_PROFILE_NAME)!;
    assert.equal(local.auth.type, 'none');
    assert.equal(local.send?.via, 'file');
    assert.equal(local.send?.folder, path.join(dir, 'outbox'));
    assert.equal(local.receive?.via, 'file');
    assert.equal(local.receive?.folder, path.join(dir, 'inbox'));
    assert.deepEqual(local.allowedFrom, ['*@localhost.localdomain']);
  });
});
