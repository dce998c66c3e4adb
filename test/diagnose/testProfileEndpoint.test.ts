import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { testProfile } from '../../functions/testProfile.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { setProcessEnv } from '../support/processEnv.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';

function post(name: string, body?: string, contentType = 'application/json'): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: `http://localhost/api/profiles/${encodeURIComponent(name)}/test`,
    params: { name },
    ...(body !== undefined && { body: { string: body }, headers: { 'content-type': contentType } }),
  });
}

function context(): InvocationContext {
  return new InvocationContext({ invocationId: 'inv-test-profile', functionName: 'testProfile', logHandler: () => {} });
}

function json(response: HttpResponseInit): Record<string, unknown> {
  assert.equal(typeof response.body, 'string');
  return JSON.parse(response.body as string) as Record<string, unknown>;
}

const contentType = (response: HttpResponseInit) => new Headers(response.headers as Record<string, string>).get('content-type');

describe('POST /api/profiles/{name}/test', () => {
  const entra = new TokenEndpointPeer();
  let dir: string;

  before(async () => {
    await entra.start();
    entra.register({ tenantId: 'contoso-tenant', clientId: 'endpoint-app', secret: 'the-right-secret-value' });
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-test-profile-'));
  });
  afterEach(() => setRuntime(undefined));
  after(async () => {
    await entra.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 with ok: true and the steps for a healthy profile (the built-in local profile, no body)', async () => {
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir } }));
    const response = await testProfile(post('local'), context());
    assert.equal(response.status, 200);
    assert.equal(contentType(response), 'application/json');
    const report = json(response);
    assert.equal(report.profile, 'local');
    assert.equal(report.ok, true);
    assert.deepEqual((report.steps as Array<{ step: string; ok: boolean }>).map((s) => [s.step, s.ok]), [['config', true], ['receive-connect', true]]);
  });

  it('with {"sendTo"} adds the send-test step, which sends one message', async () => {
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir } }));
    const response = await testProfile(post('local', JSON.stringify({ sendTo: 'checker@localhost.localdomain' })), context());
    const report = json(response);
    assert.equal(report.ok, true, response.body as string);
    assert.equal((report.steps as Array<{ step: string }>).at(-1)!.step, 'send-test');
    assert.equal(readdirSync(path.join(dir, 'outbox')).filter((f) => f.endsWith('.eml')).length, 1);
  });

  it('answers 200 with ok: false and the failed step for a broken profile: the diagnosis itself succeeded', async () => {
    const profiles = {
      profiles: {
        support: {
          mailbox: 'support@contoso.com',
          tenantId: 'contoso-tenant',
          clientId: 'endpoint-app',
          auth: { type: 'clientSecret', secret: 'support-client-secret' },
          send: { via: 'smtp' },
          endpoints: { authority: entra.url, smtp: '127.0.0.1:9' },
        },
      },
    };
    setRuntime(new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), SUPPORT_CLIENT_SECRET: 'a-stale-secret-value' } }));
    const response = await testProfile(post('support'), context());
    assert.equal(response.status, 200);
    const report = json(response);
    assert.equal(report.ok, false);
    const steps = report.steps as Array<Record<string, unknown>>;
    assert.deepEqual(steps.map((s) => s.step), ['config', 'secret', 'token']);
    assert.equal(steps[2]!.code, 'ETOKEN');
    assert.equal(steps[2]!.providerCode, 'AADSTS7000215');
    assert.match(String(steps[2]!.hint), /client secret is wrong/);
    assert.ok(!(response.body as string).includes('a-stale-secret-value'));
  });

  it('answers 200 with the failed config step when the profiles document is invalid', async () => {
    const restore = setProcessEnv({ MAIL_PROFILES: JSON.stringify({ profiles: { support: { mailbox: 'support@contoso.com', auth: { type: 'none' }, send: { via: 'smtp' } } } }) });
    try {
      const response = await testProfile(post('support'), context());
      assert.equal(response.status, 200);
      const report = json(response);
      assert.equal(report.ok, false);
      assert.deepEqual((report.steps as Array<Record<string, unknown>>).map((s) => [s.step, s.code]), [['config', 'ECONFIG']]);
    } finally {
      restore();
    }
  });

  it('answers 404 problem+json for an unknown profile', async () => {
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir } }));
    const response = await testProfile(post('nobody'), context());
    assert.equal(response.status, 404);
    assert.equal(contentType(response), 'application/problem+json');
    const problem = json(response);
    assert.equal(problem.status, 404);
    assert.equal(problem.code, 'EPROFILE_UNKNOWN');
    assert.match(String(problem.hint), /Configured profiles: local/);
  });

  const badBodies: Array<{ name: string; body: string; contentType?: string; field: string }> = [
    { name: 'a sendTo that is not an address', body: JSON.stringify({ sendTo: 'nobody' }), field: 'sendTo' },
    { name: 'an unknown field', body: JSON.stringify({ sendTo: 'a@example.com', verbose: true }), field: 'verbose' },
    { name: 'a body that is not JSON', body: 'sendTo=a@example.com', field: 'body' },
    { name: 'a non-JSON content type', body: 'x', contentType: 'text/plain', field: 'content-type' },
  ];
  for (const bad of badBodies) {
    it(`answers 400 naming the field for ${bad.name}, and diagnoses nothing`, async () => {
      setRuntime(new MailRuntime({ env: { MAIL_DIR: dir } }));
      const response = await testProfile(post('local', bad.body, bad.contentType), context());
      assert.equal(response.status, 400);
      assert.equal(contentType(response), 'application/problem+json');
      const problem = json(response);
      assert.equal(problem.code, 'EINPUT');
      assert.equal(problem.field, bad.field);
    });
  }

  it('answers 413 for a body far larger than any diagnosis request, before parsing it', async () => {
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir } }));
    const response = await testProfile(post('local', `{"sendTo": "${'a'.repeat(100_000)}@example.com"}`), context());
    assert.equal(response.status, 413);
    const problem = json(response);
    assert.equal(problem.code, 'ETOO_LARGE');
    assert.equal(problem.field, 'body');
  });
});
