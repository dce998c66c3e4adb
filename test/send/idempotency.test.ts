import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { IdempotencyStore } from '../../shared/state/idempotencyStore.js';
import { SendHarness } from '../support/sendHarness.js';

describe('Idempotency-Key on POST /api/send: a repeat answers the first result and sends nothing more', () => {
  const h = SendHarness.forSuite();

  const key = () => `key-${randomUUID()}`;
  const message = (profile = 'smtp') => ({ profile, to: ['alice@example.com'], subject: `Order ${randomBytes(4).toString('hex')}`, text: 'Your order shipped.' });

  it('queued: a repeat with the same key and body answers 202 with the same id, marked Idempotent-Replayed, and the message is sent once', async () => {
    const k = key();
    const body = message();
    const first = await h.post(body, { query: '?mode=queued', headers: { 'idempotency-key': k } });
    assert.equal(first.status, 202);
    // The same JSON with its keys in another order is the same request.
    const reordered = Object.fromEntries(Object.entries(body).reverse());
    const repeat = await h.post(reordered, { query: '?mode=queued', headers: { 'idempotency-key': k } });
    assert.equal(repeat.status, 202);
    assert.deepEqual(repeat.body, first.body);
    assert.equal(repeat.headers.location, first.headers.location);
    assert.equal(repeat.headers['idempotent-replayed'], 'true');
    assert.equal(first.headers['idempotent-replayed'], undefined);
    assert.equal((await h.queueContents()).total, 1, 'one queue message for both requests');

    await h.drainQueue();
    assert.equal(h.smtp.messages.length, 1);
    const afterSent = await h.post(body, { query: '?mode=queued', headers: { 'idempotency-key': k } });
    assert.equal(afterSent.status, 202);
    assert.deepEqual(afterSent.body, { id: first.body.id, status: 'sent' });
    assert.equal((await h.queueContents()).total, 0);
    assert.equal(h.smtp.messages.length, 1);
  });

  it('sync: a repeat answers the stored 200 outcome (same id and Message-ID) without sending again', async () => {
    const k = key();
    const body = message('graph');
    const first = await h.post(body, { headers: { 'idempotency-key': k } });
    assert.equal(first.status, 200);
    assert.equal(first.body.status, 'sent');
    const repeat = await h.post(body, { headers: { 'idempotency-key': `"${k}"` } });
    assert.equal(repeat.status, 200);
    assert.deepEqual(repeat.body, first.body);
    assert.equal(repeat.headers['idempotent-replayed'], 'true');
    assert.equal(h.graph.sent.length, 1);
    assert.equal(h.graph.sent[0]!.internetMessageId, first.body.messageId);
    // A sync send with a key is recorded, so its status can be read too.
    assert.equal((await h.status(String(first.body.id))).body.status, 'sent');
  });

  it('sync: a permanent failure is replayed as the same problem; a throttled one releases the key so the retry sends', async () => {
    const denied = key();
    h.smtp.failures = { mailFrom: { code: 550, text: '5.7.60 SMTP; Client does not have permissions to send as this sender', times: 1 } };
    const body = message();
    const first = await h.post(body, { headers: { 'idempotency-key': denied } });
    assert.equal(first.status, 502);
    assert.equal(first.body.code, 'ESEND_DENIED');
    const repeat = await h.post(body, { headers: { 'idempotency-key': denied } });
    assert.equal(repeat.status, 502);
    assert.equal(repeat.body.code, 'ESEND_DENIED');
    assert.equal(repeat.body.hint, first.body.hint);
    assert.equal(h.smtp.messages.length, 0, 'the replay did not try again (the peer would have accepted it)');

    const throttled = key();
    h.smtp.failures = { mailFrom: { code: 451, text: '4.7.500 Server busy. Please try again later', times: 1 } };
    const busy = await h.post(body, { headers: { 'idempotency-key': throttled } });
    assert.equal(busy.status, 429);
    const retried = await h.post(body, { headers: { 'idempotency-key': throttled } });
    assert.equal(retried.status, 200);
    assert.notEqual(retried.body.id, busy.body.id);
    assert.equal(h.smtp.messages.length, 1);
  });

  it('concurrent requests with one key resolve to one send, queued or sync', async () => {
    for (const query of ['?mode=queued', '']) {
      await h.reset();
      const k = key();
      const body = message();
      const answers = await Promise.all(Array.from({ length: 6 }, () => h.post(body, { query, headers: { 'idempotency-key': k } })));
      const ok = answers.filter((a) => a.status === 200 || a.status === 202);
      const busy = answers.filter((a) => a.status === 409);
      assert.equal(ok.length + busy.length, answers.length, `unexpected answers: ${answers.map((a) => a.status).join(', ')}`);
      assert.ok(ok.length >= 1);
      assert.equal(new Set(ok.map((a) => a.body.id)).size, 1, 'every success names the same send');
      for (const b of busy) {
        assert.equal(b.body.code, 'EIDEMPOTENCY_IN_PROGRESS');
        assert.equal(b.headers['retry-after'], '1');
      }
      await h.drainQueue();
      assert.equal(h.smtp.messages.length, 1, `one message sent (${query || 'sync'})`);
    }
  });

  it('the same key with a different body is refused with 422 EIDEMPOTENCY_MISMATCH and sends nothing', async () => {
    const k = key();
    const first = await h.post(message(), { query: '?mode=queued', headers: { 'idempotency-key': k } });
    assert.equal(first.status, 202);
    const other = await h.post(message(), { query: '?mode=queued', headers: { 'idempotency-key': k } });
    assert.equal(other.status, 422);
    assert.equal(other.headers['content-type'], 'application/problem+json');
    assert.equal(other.body.code, 'EIDEMPOTENCY_MISMATCH');
    assert.equal(other.body.field, 'idempotency-key');
    assert.equal((await h.queueContents()).total, 1);
  });

  it('keys are per profile: one key on two profiles makes two sends', async () => {
    const k = key();
    const body = message();
    const smtp = await h.post(body, { query: '?mode=queued', headers: { 'idempotency-key': k } });
    const graph = await h.post({ ...body, profile: 'graph' }, { query: '?mode=queued', headers: { 'idempotency-key': k } });
    assert.equal(smtp.status, 202);
    assert.equal(graph.status, 202);
    assert.notEqual(smtp.body.id, graph.body.id);
  });

  for (const [name, value] of [['empty', ''], ['longer than 255 characters', 'k'.repeat(256)], ['with a control character', 'abc\u0001def']] as const) {
    it(`refuses an Idempotency-Key that is ${name} with 400 on "idempotency-key"`, async () => {
      const answer = await h.post(message(), { query: '?mode=queued', headers: { 'idempotency-key': value } });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.field, 'idempotency-key');
      assert.equal((await h.queueContents()).total, 0);
    });
  }

  it('a key is held for 24 hours: a day later it may name a new request', async () => {
    let now = new Date('2024-03-01T09:00:00Z');
    const store = new IdempotencyStore(h.state.account, { now: () => now });
    const k = key();
    assert.equal((await store.claim('smtp', k, { id: 'first', requestHash: 'a' })).claimed, true);
    now = new Date('2024-03-02T08:59:00Z');
    assert.deepEqual(await store.claim('smtp', k, { id: 'second', requestHash: 'b' }), { claimed: false, record: { id: 'first', requestHash: 'a', createdAt: '2024-03-01T09:00:00.000Z' } });
    now = new Date('2024-03-02T09:00:01Z');
    const [late, later] = await Promise.all([store.claim('smtp', k, { id: 'third', requestHash: 'c' }), store.claim('smtp', k, { id: 'fourth', requestHash: 'd' })]);
    assert.equal([late, later].filter((c) => c.claimed).length, 1, 'one of two late requests takes the expired key over');
  });
});
