import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import { MAILBOX, SendHarness } from '../support/sendHarness.js';

/**
 * Issue 12, item 2: the backlog limits the seeds' products expose (Pandora ITSM's "Max. pending
 * emails" and "Max. emails sent per execution"): send.maxPending and send.maxPerRun.
 */
describe('backlog limits: send.maxPending and send.maxPerRun', () => {
  const h = SendHarness.forSuite();

  const profiles = (send: Record<string, unknown>) => JSON.stringify({ profiles: { graph: {
    mailbox: MAILBOX, tenantId: 'contoso-tenant', clientId: 'mail-app', auth: { type: 'clientSecret', secret: 'mail-app-secret' },
    send: { via: 'graph', allowedFrom: [MAILBOX], ratePerMinute: 6000, ...send },
    endpoints: { authority: h.entra.url, graph: h.graph.url },
  } } });
  const message = (n: number) => ({ to: `customer${n}@fabrikam.example`, subject: `backlog ${n}`, text: 'hello' });

  it('at send.maxPending queued sends, POST /api/send answers 503 EBACKLOG with Retry-After and stores nothing; once they went, it takes sends again', async () => {
    h.useRuntime({ MAIL_PROFILES: profiles({ maxPending: 3 }) });
    for (let n = 1; n <= 3; n++) assert.equal((await h.post(message(n), { query: '?mode=queued' })).status, 202);
    const refused = await h.post(message(4), { query: '?mode=queued' });
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['retry-after'], '60');
    assert.deepEqual([refused.body.code, refused.body.field], ['EBACKLOG', 'send.maxPending']);
    assert.equal(await h.state.statuses.countPending('graph', 100), 3, 'nothing stored for the refused send');
    const queue = await h.state.account.queue(SEND_QUEUE);
    assert.equal((await queue.getProperties()).approximateMessagesCount, 3);

    assert.equal(await h.drainQueue(), 3);
    assert.equal(h.graph.sent.length, 3);
    // A new instance counts afresh (this one would after BACKLOG_RECOUNT_MS): the backlog drained.
    h.useRuntime({ MAIL_PROFILES: profiles({ maxPending: 3 }) });
    assert.equal((await h.post(message(5), { query: '?mode=queued' })).status, 202);
  });

  it('twenty sends arriving at once on a new instance share one count of the table, and each is counted: the limit holds among them', async () => {
    const waiting = await h.state.statuses.countPending('graph', 100);
    const runtime = h.useRuntime({ MAIL_PROFILES: profiles({ maxPending: 12 + waiting }) });
    const statuses = runtime.state.send.statuses;
    const countPending = statuses.countPending.bind(statuses);
    let counts = 0;
    statuses.countPending = (...args) => {
      counts++;
      return countPending(...args);
    };
    const answers = await Promise.all(Array.from({ length: 20 }, (_, n) => h.post(message(n), { query: '?mode=queued' })));
    assert.equal(counts, 1, 'one scan of the status table, not one per request');
    assert.deepEqual([answers.filter((a) => a.status === 202).length, answers.filter((a) => a.status === 503).length], [12, 8]);
    assert.equal(await h.state.statuses.countPending('graph', 100), 12 + waiting);
    await h.drainQueue();
  });

  it('send.maxPerRun 1: of two sends of one profile handed to one instance at once, one goes, the other waits on the queue unclaimed', async () => {
    h.useRuntime({ MAIL_PROFILES: profiles({ maxPerRun: 1 }) });
    const ids: string[] = [];
    for (let n = 1; n <= 2; n++) ids.push(String((await h.post(message(n), { query: '?mode=queued' })).body.id));
    await (await h.state.account.queue(SEND_QUEUE)).clearMessages();
    h.graph.answerDelayMs = 300;
    try {
      await Promise.all(ids.map((id) => h.deliver({ id })));
    } finally {
      h.graph.answerDelayMs = 0;
    }
    assert.equal(h.graph.sent.length, 1);
    const statuses = await Promise.all(ids.map(async (id) => (await h.state.statuses.get(id))!.record));
    assert.deepEqual(statuses.map((r) => r.status).sort(), ['queued', 'sent']);
    const waiting = statuses.find((r) => r.status === 'queued')!;
    assert.equal(waiting.attempts, 0, 'the deferred send was not claimed');
    const queue = await h.state.account.queue(SEND_QUEUE);
    const peeked = await queue.peekMessages({ numberOfMessages: 32 });
    assert.equal(peeked.peekedMessageItems.length, 0, 'it is on the queue, invisible for a few seconds');
    assert.equal((await queue.getProperties()).approximateMessagesCount, 1);
  });
});
