import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { connect } from '../../functions/connect.js';
import { pollNow } from '../../functions/pollNow.js';
import { send } from '../../functions/send.js';
import { testProfile } from '../../functions/testProfile.js';
import type { Profile } from '../../shared/config/profiles.js';
import { silentLogger } from '../../shared/log.js';
import { registerSensitive } from '../../shared/redact.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';

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
});
