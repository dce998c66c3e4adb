import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRequest, InvocationContext, type Timer } from '@azure/functions';
import { poll, pollQueue } from '../../functions/poll.js';
import { pollNow } from '../../functions/pollNow.js';
import { pollWorker } from '../../functions/pollWorker.js';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { setRuntime } from '../../shared/runtime.js';
import { ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';

function invocation(name: string): InvocationContext {
  return new InvocationContext({ invocationId: `${name}-${Date.now()}`, functionName: name, logHandler: () => {} });
}

function pollRequest(name: string): HttpRequest {
  return new HttpRequest({ method: 'POST', url: `http://localhost/api/profiles/${name}/poll`, params: { name } });
}

const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };

describe('the poll, pollWorker and pollNow functions', () => {
  const h = new ReceiveHarness();
  before(() => h.start());
  after(async () => {
    setRuntime(undefined);
    await h.stop();
  });
  beforeEach(() => h.webhook.reset());

  const message = (n: number) => composeEml({ from: `user${n}@fabrikam.com`, to: 'desk@contoso.com', subject: `Fn ${n}`, text: 'hello', messageId: `<fn-${n}@fabrikam.com>` });

  it('poll fans out one queue message per receiving profile, and none for send-only profiles', async () => {
    setRuntime(h.runtime({
      a: h.fileProfile(h.folder('a')),
      b: h.fileProfile(h.folder('b')),
      sendOnly: { mailbox: 'out@contoso.com', auth: { type: 'none' }, send: { via: 'file' } },
    }));
    const context = invocation('poll');
    await poll(timer, context);
    const out = context.extraOutputs.get(pollQueue) as Array<{ profile: string; requestedAt: string }>;
    assert.deepEqual(out.map((r) => r.profile), ['a', 'b']);
    assert.ok(out.every((r) => !Number.isNaN(Date.parse(r.requestedAt))));
  });

  it('POST /api/profiles/{name}/poll polls now and answers with what it did', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(1), 1);
    dropEml(inbox, 'two.eml', await message(2), 2);
    setRuntime(h.runtime({ desk: h.fileProfile(inbox) }));
    const response = await pollNow(pollRequest('desk'), invocation('pollNow'));
    assert.equal(response.status, 200);
    const body = JSON.parse(response.body as string) as Record<string, unknown>;
    assert.equal(body.profile, 'desk');
    assert.equal(body.status, 'completed');
    assert.equal(body.delivered, 2);
    assert.deepEqual(body.cursor, { seen: ['one.eml', 'two.eml'] });
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Fn 1', 'Fn 2']);
  });

  it('an unknown profile is a 404 problem naming the configured ones', async () => {
    setRuntime(h.runtime({ desk: h.fileProfile(h.folder('inbox')) }));
    const response = await pollNow(pollRequest('nobody'), invocation('pollNow'));
    assert.equal(response.status, 404);
    assert.equal((response.headers as Record<string, string>)['Content-Type'], 'application/problem+json');
    const problem = JSON.parse(response.body as string) as Record<string, unknown>;
    assert.equal(problem.code, 'EPROFILE_UNKNOWN');
    assert.equal(problem.status, 404);
    assert.match(String(problem.hint), /desk/);
  });

  it('a poll that stops at a failing sink answers with a problem carrying the counts', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(3), 1);
    setRuntime(h.runtime({ broken: h.fileProfile(inbox) }, { WEBHOOK_MAX_ATTEMPTS: '1' }));
    h.webhook.answer({ status: 503 });
    const response = await pollNow(pollRequest('broken'), invocation('pollNow'));
    assert.equal(response.status, 502);
    const problem = JSON.parse(response.body as string) as { code: string; profile: string; poll: { status: string; delivered: number } };
    assert.equal(problem.code, 'ESINK_UNAVAILABLE');
    assert.equal(problem.profile, 'broken');
    assert.deepEqual([problem.poll.status, problem.poll.delivered], ['failed', 0]);
  });

  it('two pollWorkers started together on one mailbox: one works, the other skips', async () => {
    const inbox = h.folder('inbox');
    for (let n = 10; n < 14; n++) dropEml(inbox, `m${n}.eml`, await message(n), n);
    setRuntime(h.runtime({ shared: h.fileProfile(inbox) }));
    h.logs.length = 0;
    await Promise.all([pollWorker({ profile: 'shared' }, invocation('pollWorker')), pollWorker({ profile: 'shared' }, invocation('pollWorker'))]);
    const polls = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.operation === 'poll');
    assert.deepEqual(polls.map((p) => p.status).sort(), ['completed', 'leased']);
    assert.equal(h.webhook.received.length, 4, 'each message delivered once');
  });

  it('a pollWorker item that is not a poll request, or names a removed profile, is logged and dropped, not retried', async () => {
    setRuntime(h.runtime({ desk: h.fileProfile(h.folder('inbox')) }));
    h.logs.length = 0;
    await pollWorker({ nonsense: true }, invocation('pollWorker'));
    await pollWorker({ profile: 'removed' }, invocation('pollWorker'));
    const errors = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.operation === 'pollWorker');
    assert.deepEqual(errors.map((e) => e.code), ['EINPUT', 'EPROFILE_UNKNOWN']);
  });
});
