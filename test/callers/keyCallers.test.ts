import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { send } from '../../functions/send.js';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';

const KEY = 'alerts-key-value-0123456789';

// Only key callers and no API_TENANT_ID / API_AUDIENCE: a request that also carries a bearer
// token was answered 500 ECONFIG ("a caller sent a bearer token, but API_TENANT_ID ... not set").
describe('callers with keys only: an Authorization header is not a credential of this app', () => {
  let dir: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-key-callers-'));
    const profile = { mailbox: 'alerts@contoso.com', auth: { type: 'none' }, send: { via: 'file', folder: path.join(dir, 'out'), allowedFrom: ['alerts@contoso.com'] } };
    setRuntime(new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ callers: { alerts: { keySecret: 'alerts-caller-key', profiles: ['alerts'] } }, profiles: { alerts: profile } }), ALERTS_CALLER_KEY: KEY }, logger: silentLogger }));
  });
  after(() => {
    setRuntime(undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (headers: Record<string, string>) =>
    send(
      new HttpRequest({ method: 'POST', url: 'http://localhost/api/send', headers: { 'content-type': 'application/json', ...headers }, body: { string: JSON.stringify({ to: 'ops@example.com', subject: 'disk', text: 'full' }) } }),
      new InvocationContext({ invocationId: 'inv', functionName: 'send', logHandler: () => {} }),
    );
  const sent = () => (existsSync(path.join(dir, 'out')) ? readdirSync(path.join(dir, 'out')).length : 0);

  it('a bearer token alone is 401 EUNAUTHENTICATED asking for the key, not 500', async () => {
    const response = await post({ authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln' });
    assert.equal(response.status, 401);
    assert.equal(JSON.parse(response.body as string).code, 'EUNAUTHENTICATED');
    assert.match(String((response.headers as Record<string, string>)['WWW-Authenticate']), /ApiKey/);
    assert.equal(sent(), 0);
  });

  it('a bearer token beside the caller key sends with the key', async () => {
    const response = await post({ authorization: 'Bearer some-gateway-token', 'x-api-key': KEY });
    assert.equal(response.status, 200, response.body as string);
    assert.equal(sent(), 1);
  });
});
