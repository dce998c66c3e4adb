import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { connect } from '../../functions/connect.js';
import { healthProfiles } from '../../functions/healthProfiles.js';
import { pollNow } from '../../functions/pollNow.js';
import { profiles } from '../../functions/profiles.js';
import { send } from '../../functions/send.js';
import { sendStatus } from '../../functions/sendStatus.js';
import { testProfile } from '../../functions/testProfile.js';
import { silentLogger } from '../../shared/log.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { AzuritePeer } from '../peers/azurite.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorOf } from '../support/mailError.js';

const TENANT = 'contoso-api-tenant';
const AUDIENCE = 'api://m365-mail';
const HELPDESK_APP = '11111111-1111-1111-1111-111111111111';
const OPS_APP = '33333333-3333-3333-3333-333333333333';
const STRANGER_APP = '99999999-9999-9999-9999-999999999999';
const MONITORING_KEY = 'monitoring-key-value-0123456789';

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

function json(response: HttpResponseInit): Record<string, unknown> {
  return JSON.parse(response.body as string) as Record<string, unknown>;
}

function header(response: HttpResponseInit, name: string): string | undefined {
  const headers = (response.headers ?? {}) as Record<string, string>;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

describe('callers: only the apps the profiles document names may use the profiles it grants them', () => {
  const entra = new TokenEndpointPeer();
  const azurite = new AzuritePeer();
  let dir: string;
  let runtime: MailRuntime;

  const fileProfile = (name: string) => ({
    mailbox: `${name}@contoso.com`,
    auth: { type: 'none' },
    send: { via: 'file', folder: path.join(dir, name), allowedFrom: [`${name}@contoso.com`, `*@${name}.contoso.com`] },
    receive: { via: 'file', folder: path.join(dir, `${name}-in`), deliver: { queue: { name: 'mail-in' } } },
  });

  before(async () => {
    await Promise.all([entra.start(), azurite.start()]);
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-callers-'));
    const document = {
      callers: {
        helpdesk: { entraAppId: HELPDESK_APP, profiles: ['support'], allowedFrom: ['support@contoso.com'] },
        monitoring: { keySecret: 'monitoring-caller-key', profiles: ['alerts'] },
        ops: { entraAppId: OPS_APP, admin: true, roles: ['Mail.Admin'] },
      },
      profiles: { support: fileProfile('support'), alerts: fileProfile('alerts'), ceo: fileProfile('ceo') },
    };
    runtime = new MailRuntime({
      env: {
        MAIL_PROFILES: JSON.stringify(document),
        MONITORING_CALLER_KEY: MONITORING_KEY,
        AZURE_AUTHORITY_HOST: entra.url,
        API_TENANT_ID: TENANT,
        API_AUDIENCE: AUDIENCE,
        AzureWebJobsStorage: azurite.connectionString,
        OAUTH_STATE_KEY: 'k'.repeat(32),
      },
      logger: silentLogger,
    });
    setRuntime(runtime);
  });

  after(async () => {
    setRuntime(undefined);
    await runtime.close();
    await Promise.all([entra.stop(), azurite.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const token = (clientId: string, extra: Partial<Parameters<TokenEndpointPeer['apiToken']>[0]> = {}) => entra.apiToken({ tenantId: TENANT, clientId, audience: AUDIENCE, ...extra });
  const bearer = async (clientId: string, extra: Partial<Parameters<TokenEndpointPeer['apiToken']>[0]> = {}) => ({ authorization: `Bearer ${await token(clientId, extra)}` });
  const key = (value = MONITORING_KEY) => ({ 'x-api-key': value });
  const request = (method: string, url: string, headers: Record<string, string>, body?: unknown, params: Record<string, string> = {}) =>
    new HttpRequest({ method, url: `http://localhost/api/${url}`, headers: { 'content-type': 'application/json', ...headers }, ...(body !== undefined && { body: { string: JSON.stringify(body) } }), params });
  const call = (handler: Handler, req: HttpRequest) => handler(req, new InvocationContext({ invocationId: `inv-${Math.random()}`, functionName: 'test', logHandler: () => {} }));
  const sent = (profile: string) => (existsSync(path.join(dir, profile)) ? readdirSync(path.join(dir, profile)).filter((f) => f.endsWith('.eml')).length : 0);
  const mail = (profile: string, extra: Record<string, unknown> = {}) => ({ profile, to: 'someone@example.com', subject: 'hi', text: 'hello', ...extra });

  it('a valid Entra token of a granted app sends from its profile; a key caller from its own', async () => {
    const before = [sent('support'), sent('alerts')];
    const a = await call(send, request('POST', 'send', await bearer(HELPDESK_APP), mail('support')));
    assert.equal(a.status, 200, a.body as string);
    const b = await call(send, request('POST', 'send', key(), mail('alerts')));
    assert.equal(b.status, 200, b.body as string);
    assert.deepEqual([sent('support'), sent('alerts')], [before[0]! + 1, before[1]! + 1]);
  });

  it('a v1.0 token (appid, the sts issuer of its own discovery document) of a granted app sends too', async () => {
    const before = sent('support');
    const response = await call(send, request('POST', 'send', await bearer(HELPDESK_APP, { version: '1.0' }), mail('support')));
    assert.equal(response.status, 200, response.body as string);
    assert.equal(sent('support'), before + 1);
  });

  it('a caller naming no profile gets its only one', async () => {
    const response = await call(send, request('POST', 'send', key(), { to: 'someone@example.com', subject: 'hi', text: 'hello' }));
    assert.equal(response.status, 200, response.body as string);
  });

  const refusedTokens: Array<[string, () => Promise<Record<string, string>>]> = [
    ['no credentials at all', async () => ({})],
    ['a token for another audience', () => bearer(HELPDESK_APP, { audience: 'api://someone-else' })],
    ['a token from another issuer', () => bearer(HELPDESK_APP, { issuer: `${entra.url}/another-tenant/v2.0` })],
    ['a v1.0 token from another tenant\'s sts issuer', () => bearer(HELPDESK_APP, { version: '1.0', issuer: entra.v1Issuer('another-tenant') })],
    ['a v1.0 token signed by a key the tenant does not publish', () => bearer(HELPDESK_APP, { version: '1.0', signedBy: 'stranger' })],
    ['an expired token', () => bearer(HELPDESK_APP, { expiresInSeconds: -3600 })],
    ['a token signed by a key the tenant does not publish', () => bearer(HELPDESK_APP, { signedBy: 'stranger' })],
    ['a valid token of an app that is not a caller', () => bearer(STRANGER_APP)],
    ['a token that is not a JWT', async () => ({ authorization: 'Bearer not-a-token' })],
    ['a wrong key', async () => key('monitoring-key-value-0123456780')],
  ];
  for (const [what, headers] of refusedTokens) {
    it(`${what}: 401 problem+json with WWW-Authenticate, and nothing is sent`, async () => {
      const before = sent('support') + sent('alerts');
      const response = await call(send, request('POST', 'send', await headers(), mail('support')));
      assert.equal(response.status, 401, response.body as string);
      assert.equal(header(response, 'content-type'), 'application/problem+json');
      assert.equal(json(response).code, 'EUNAUTHENTICATED');
      assert.match(header(response, 'www-authenticate') ?? '', /Bearer realm="m365-mail"/);
      assert.equal(sent('support') + sent('alerts'), before);
    });
  }

  it('a profile the caller was not granted is 403, and the answer names only its own profiles', async () => {
    for (const profile of ['ceo', 'alerts', 'no-such-profile']) {
      const before = sent('ceo') + sent('alerts');
      const response = await call(send, request('POST', 'send', await bearer(HELPDESK_APP), mail(profile)));
      assert.equal(response.status, 403, `${profile}: ${response.body as string}`);
      assert.equal(json(response).code, 'EFORBIDDEN');
      const others = ['support', 'alerts', 'ceo'].filter((p) => p !== profile && p !== 'support');
      const body = response.body as string;
      assert.ok(others.every((p) => !body.includes(p)), `the answer names a profile the caller was not granted: ${body}`);
      assert.equal(json(response).hint, 'Use one of your profiles: support.');
      assert.equal(sent('ceo') + sent('alerts'), before);
    }
  });

  it('a from the profile allows but the caller does not is 403 and nothing is sent', async () => {
    const before = sent('support');
    const response = await call(send, request('POST', 'send', await bearer(HELPDESK_APP), mail('support', { from: 'desk@support.contoso.com' })));
    assert.deepEqual([response.status, json(response).code, json(response).field], [403, 'EFORBIDDEN', 'from']);
    assert.equal(sent('support'), before);
  });

  it('an admin may use every profile, but only with the app role its caller entry asks for', async () => {
    const ok = await call(send, request('POST', 'send', await bearer(OPS_APP, { roles: ['Mail.Admin'] }), mail('ceo')));
    assert.equal(ok.status, 200, ok.body as string);
    const noRole = await call(send, request('POST', 'send', await bearer(OPS_APP), mail('ceo')));
    assert.deepEqual([noRole.status, json(noRole).code], [403, 'EFORBIDDEN']);
  });

  it('every admin function (profiles, test, poll, connect, health per profile), in one table, refuses non-admin callers with 403 and no caller with 401', async () => {
    const table: Array<[string, Handler, (h: Record<string, string>) => HttpRequest]> = [
      ['profiles', profiles, (h) => request('GET', 'profiles', h)],
      ['testProfile', testProfile, (h) => request('POST', 'profiles/support/test', h, {}, { name: 'support' })],
      ['pollNow', pollNow, (h) => request('POST', 'profiles/support/poll', h, undefined, { name: 'support' })],
      ['connect', connect, (h) => request('GET', 'connect/support', h, undefined, { profile: 'support' })],
      ['healthProfiles', healthProfiles, (h) => request('GET', 'health/profiles', h)],
    ];
    const admin = await bearer(OPS_APP, { roles: ['Mail.Admin'] });
    for (const [name, handler, make] of table) {
      const none = await call(handler, make({}));
      assert.equal(none.status, 401, `${name} without a caller: ${none.body as string}`);
      const helpdesk = await call(handler, make(await bearer(HELPDESK_APP)));
      assert.deepEqual([helpdesk.status, json(helpdesk).code], [403, 'EFORBIDDEN'], `${name} for a non-admin caller`);
      const monitoring = await call(handler, make(key()));
      assert.equal(monitoring.status, 403, `${name} for a key caller`);
      const byAdmin = await call(handler, make(admin));
      assert.ok(byAdmin.status !== 401 && byAdmin.status !== 403, `${name} for the admin: ${byAdmin.status} ${byAdmin.body as string}`);
    }
  });

  it('GET /api/send/{id} answers only the caller that made the send, or an admin; another caller gets 404 as for no send', async () => {
    const queued = await call(send, request('POST', 'send?mode=queued', await bearer(HELPDESK_APP), mail('support')));
    assert.equal(queued.status, 202, queued.body as string);
    const id = String(json(queued).id);
    const read = async (headers: Record<string, string>) => call(sendStatus, request('GET', `send/${id}`, headers, undefined, { id }));
    assert.equal((await read(await bearer(HELPDESK_APP))).status, 200);
    assert.equal((await read(await bearer(OPS_APP, { roles: ['Mail.Admin'] }))).status, 200);
    const other = await read(key());
    assert.deepEqual([other.status, json(other).code], [404, 'ESEND_NOT_FOUND']);
    assert.equal((await read({})).status, 401);
  });

  it('the JWKS is fetched once and kept for later tokens; a token signed by the other key the tenant publishes is accepted', async () => {
    await call(send, request('POST', 'send', await bearer(HELPDESK_APP), mail('support')));
    const fetched = entra.jwksFetches;
    await call(send, request('POST', 'send', await bearer(HELPDESK_APP), mail('support')));
    assert.equal(entra.jwksFetches, fetched, 'the keys were kept');
    const rotated = await call(send, request('POST', 'send', await bearer(HELPDESK_APP, { keyIndex: 1 }), mail('support')));
    assert.equal(rotated.status, 200, 'a token signed by the other published key is accepted');
  });
});

describe('the callers section is validated with the profiles', () => {
  const profilesDoc = { support: { mailbox: 'support@contoso.com', auth: { type: 'none' }, send: { via: 'file' } } };
  const error = (callers: unknown) => mailErrorOf(() => parseProfiles({ callers, profiles: profilesDoc }, 'test'));

  it('names the caller and the field: a profile that does not exist, neither or both credentials, a bad app id', () => {
    assert.equal(error({ a: { keySecret: 'a-key', profiles: ['nope'] } }).field, 'callers.a.profiles.0');
    assert.equal(error({ b: { profiles: ['support'] } }).field, 'callers.b.entraAppId');
    assert.equal(error({ c: { keySecret: 'c-key', entraAppId: HELPDESK_APP } }).field, 'callers.c.entraAppId');
    assert.equal(error({ d: { entraAppId: 'not-a-guid' } }).field, 'callers.d.entraAppId');
    assert.equal(error({ e: { keySecret: 'e-key', colour: 'red' } }).field, 'callers.e.colour');
  });

  it('an Entra caller needs API_TENANT_ID and API_AUDIENCE at start-up', () => {
    const env = { MAIL_PROFILES: JSON.stringify({ callers: { ops: { entraAppId: OPS_APP, admin: true } }, profiles: profilesDoc }) };
    assert.equal(mailErrorOf(() => new MailRuntime({ env, logger: silentLogger })).field, 'API_TENANT_ID');
    assert.equal(mailErrorOf(() => new MailRuntime({ env: { ...env, API_TENANT_ID: TENANT }, logger: silentLogger })).field, 'API_AUDIENCE');
  });
});
