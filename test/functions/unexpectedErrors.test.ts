import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { connect } from '../../functions/connect.js';
import { pollNow } from '../../functions/pollNow.js';
import { send } from '../../functions/send.js';
import { testProfile } from '../../functions/testProfile.js';
import type { Profile } from '../../shared/config/profiles.js';
import { createLogger, silentLogger } from '../../shared/log.js';
import { registerSensitive } from '../../shared/redact.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import type { SecretStore } from '../../shared/secrets/store.js';

const SECRET = 'unexpected-S3cr3t-value-42';
registerSensitive(SECRET);

/** A runtime with a bug: looking a profile up throws something that is not a MailError, carrying a secret. */
class BrokenRuntime extends MailRuntime {
  override profile(_name: string | undefined): Profile {
    throw new TypeError(`cannot read properties of undefined (reading 'auth') near ${SECRET}`);
  }
}

type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

const handlers: Array<[string, Handler, HttpRequest]> = [
  ['send', send, new HttpRequest({ method: 'POST', url: 'http://localhost/api/send', body: { string: JSON.stringify({ to: 'a@example.com', text: 'hi' }) }, headers: { 'content-type': 'application/json' } })],
  ['connect', connect, new HttpRequest({ method: 'GET', url: 'http://localhost/api/connect/support', params: { profile: 'support' } })],
  ['testProfile', testProfile, new HttpRequest({ method: 'POST', url: 'http://localhost/api/profiles/support/test', params: { name: 'support' } })],
  ['pollNow', pollNow, new HttpRequest({ method: 'POST', url: 'http://localhost/api/profiles/support/poll', params: { name: 'support' } })],
];

describe('an unexpected failure in an HTTP function', () => {
  afterEach(() => setRuntime(undefined));

  for (const [name, handler, request] of handlers) {
    it(`${name}: answers 500 EINTERNAL without details, and logs the cause redacted with the invocation id`, async () => {
      setRuntime(new BrokenRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail' }, logger: silentLogger }));
      const logs: string[] = [];
      const context = new InvocationContext({ invocationId: `inv-${name}`, functionName: name, logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) });
      const response = await handler(request, context);
      assert.equal(response.status, 500);
      const body = String(response.body);
      const problem = JSON.parse(body) as Record<string, unknown>;
      assert.equal(problem.code, 'EINTERNAL');
      assert.doesNotMatch(body, /TypeError|reading 'auth'/);
      assert.ok(!body.includes(SECRET));
      const logged = logs.find((l) => l.includes(`inv-${name}`) && l.includes("reading 'auth'"));
      assert.ok(logged, `the cause was not logged: ${logs.join('\n')}`);
      assert.ok(!logs.some((l) => l.includes(SECRET)), 'a secret reached the log');
    });
  }

  it('testProfile: a step that fails unexpectedly is EINTERNAL in the report, its text only in the log', async () => {
    const logs: string[] = [];
    const sink = (line: unknown) => logs.push(String(line));
    const brokenStore: SecretStore = {
      kind: 'keyVault',
      getSecret: async () => {
        throw new TypeError(`cannot read properties of undefined at /srv/app/node_modules/x.js ${SECRET}`);
      },
    };
    setRuntime(new MailRuntime({
      env: { MAIL_PROFILES: JSON.stringify({ profiles: { support: { mailbox: 'support@contoso.com', tenantId: 'contoso', clientId: 'app', auth: { type: 'clientSecret', secret: 'support-secret' }, send: { via: 'smtp' } } } }) },
      secrets: brokenStore,
      logger: createLogger({ log: sink, warn: sink, error: sink }),
    }));
    const request = new HttpRequest({ method: 'POST', url: 'http://localhost/api/profiles/support/test', params: { name: 'support' } });
    const response = await testProfile(request, new InvocationContext({ invocationId: 'inv-diagnose', functionName: 'testProfile', logHandler: () => {} }));
    assert.equal(response.status, 200);
    const body = String(response.body);
    const report = JSON.parse(body) as { ok: boolean; steps: Array<{ step: string; code?: string }> };
    assert.equal(report.ok, false);
    assert.deepEqual(report.steps.at(-1), { ...report.steps.at(-1), step: 'secret', code: 'EINTERNAL' });
    assert.doesNotMatch(body, /TypeError|\/srv\/app|cannot read/);
    assert.ok(logs.some((l) => l.includes('/srv/app/node_modules/x.js')), 'the cause was not logged');
    assert.ok(!logs.some((l) => l.includes(SECRET)), 'a secret reached the log');
  });
});
