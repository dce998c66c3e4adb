import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import { clearGovernorState } from '../support/governorState.js';
import { MAILBOX, SendHarness } from '../support/sendHarness.js';

/**
 * The case, at Exchange's own rate: 60 queued sends at 30 a minute go out over about two
 * minutes (5 at once, then one every 60 / 26 s), not in a burst. What is asserted is a lower bound
 * on when each send arrived at Graph (a busy machine may make one late, never early): a check
 * that they were paced, not a claim about speed. The test waits those two minutes.
 */
describe('send pacing per sending mailbox (send.ratePerMinute, across instances, in table mailgovernor)', () => {
  const h = SendHarness.forSuite();

  // Each test starts from an idle mailbox: the pace row is what a test would otherwise inherit.
  beforeEach(() => clearGovernorState(h.state.account));

  function graphProfile(send: Record<string, unknown>): string {
    const base = JSON.parse(String(h.useRuntime().env.MAIL_PROFILES)) as { profiles: Record<string, { send: Record<string, unknown> }> };
    const graph = base.profiles.graph!;
    graph.send = { ...graph.send, ...send };
    return JSON.stringify({ profiles: { graph } });
  }

  const message = (i: number) => ({ profile: 'graph', to: 'alice@example.com', subject: `Paced ${i}`, text: 'Hello.' });

  /** Runs the worker over mail-send as the host does (several messages at once), until `done` or the deadline. */
  async function runWorkers(done: () => boolean, deadlineMs: number): Promise<void> {
    const queue = await h.state.account.queue(SEND_QUEUE);
    const until = Date.now() + deadlineMs;
    while (!done() && Date.now() < until) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 60 });
      if (receivedMessageItems.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        continue;
      }
      await Promise.all(receivedMessageItems.map(async (m) => {
        await h.deliver(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')), m.dequeueCount, m.messageId);
        await queue.deleteMessage(m.messageId, m.popReceipt);
      }));
    }
  }

  it('60 queued sends at 30 a minute reach Graph over two minutes, no sooner than the pace allows (5 at once, then one per 60 / 26 s), each waiting on the queue, not as a failed attempt', async () => {
    const rate = 30;
    h.useRuntime({ MAIL_PROFILES: graphProfile({ ratePerMinute: rate }) });
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const accepted = await h.post(message(i), { query: '?mode=queued' });
      assert.equal(accepted.status, 202, accepted.raw);
      ids.push(String(accepted.body.id));
    }
    const started = Date.now();
    await runWorkers(() => h.graph.sent.length >= 60, 300_000);
    assert.equal(h.graph.sent.length, 60, 'every queued message was sent');

    const times = h.graph.apiRequests('POST', /\/sendMail$/).filter((r) => r.status === 202).map((r) => r.receivedAt).sort((a, b) => a - b);
    assert.equal(times.length, 60);
    // A send may arrive late (a busy machine), never early: the k-th arrival is no sooner than the
    // k-th place from an idle mailbox. Unpaced, the 60 would all arrive within a second or two.
    const interval = 60_000 / (rate - 5 + 1);
    const early = times.map((t, k) => ({ k: k + 1, after: Math.round(t - started), allowed: Math.round(Math.max(0, k + 1 - 5) * interval) })).filter((e) => e.after < e.allowed * 0.97);
    assert.deepEqual(early, []);
    assert.ok(times[59]! - started >= 55 * interval * 0.97, `the 60th went ${Math.round((times[59]! - started) / 1000)} s after the first: not in a burst`);

    for (const id of ids) {
      const status = await h.status(id);
      assert.equal(status.body.status, 'sent', status.raw);
      assert.equal(status.body.attempts, 1, 'a wait for the send rate is not an attempt');
    }
    assert.equal(h.graph.requests.filter((r) => r.status === 429).length, 0);
  });

  it('a sync send over the rate answers 429 ETHROTTLED with Retry-After, and nothing is sent; the ones within it are sent', async () => {
    // 6 a minute: 5 at once, then one every 30 s.
    h.useRuntime({ MAIL_PROFILES: graphProfile({ ratePerMinute: 6 }) });
    for (let i = 0; i < 5; i++) {
      const sent = await h.post(message(i));
      assert.equal(sent.status, 200, sent.raw);
    }
    const refused = await h.post(message(5));
    assert.equal(refused.status, 429, refused.raw);
    assert.equal(refused.body.code, 'ETHROTTLED');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter >= 25 && retryAfter <= 30, `Retry-After ${refused.headers['retry-after']}`);
    assert.match(String(refused.body.detail), /send rate of 6 messages a minute/);
    assert.equal(h.graph.sent.length, 5, 'the refused send never reached Graph');
    assert.ok(h.graph.sent.every((m) => m.mailbox === MAILBOX));
  });

  it('counts recipients per day: a message that would pass send.recipientsPerDay is refused with 429 until the day has room', async () => {
    h.useRuntime({ MAIL_PROFILES: graphProfile({ recipientsPerDay: 4, ratePerMinute: 600 }) });
    const first = await h.post({ ...message(0), to: ['a@example.com', 'b@example.com'], cc: 'c@example.com' });
    assert.equal(first.status, 200, first.raw);
    const over = await h.post({ ...message(1), to: 'd@example.com', bcc: 'e@example.com' });
    assert.equal(over.status, 429, over.raw);
    assert.match(String(over.body.detail), /4 recipients a day/);
    assert.ok(Number(over.headers['retry-after']) > 3600, 'room comes back over the rolling 24 hours');
    const fits = await h.post({ ...message(2), to: 'd@example.com' });
    assert.equal(fits.status, 200, fits.raw);
    assert.equal(h.graph.sent.length, 2);
  });
});
