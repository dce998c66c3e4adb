import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { simpleParser } from 'mailparser';
import { MailError } from '../../shared/errors.js';
import { HOST_MAX_DEQUEUE_COUNT, processQueuedSend } from '../../shared/send/queuedSend.js';
import { OUTBOX_CONTAINER, OutboxStore } from '../../shared/state/outboxStore.js';
import { SENDS_TABLE } from '../../shared/state/sendStatusStore.js';
import { tableKey } from '../../shared/state/keys.js';
import { MAILBOX, SendHarness } from '../support/sendHarness.js';

describe('queued sending: POST /api/send?mode=queued, GET /api/send/{id} and sendWorker (Azurite, SMTP and Graph peers)', () => {
  const h = SendHarness.forSuite();

  const message = (profile = 'smtp') => ({ profile, to: 'alice@example.com', subject: `Ticket ${randomBytes(4).toString('hex')}`, text: 'The printer is on fire.' });

  async function outboxBlobs(): Promise<string[]> {
    const container = await h.state.account.container(OUTBOX_CONTAINER);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat()) names.push(blob.name);
    return names;
  }

  /** The status row as stored (what GET /api/send/{id} never shows whole). */
  async function statusRow(id: string): Promise<Record<string, unknown>> {
    const table = await h.state.account.table(SENDS_TABLE);
    return table.getEntity<Record<string, unknown>>(tableKey(id), 'send');
  }

  /** A message whose stored JSON is over STATUS_ROW_PAYLOAD_MAX_CHARS: its attachment alone is 32,000 characters of base64. */
  const largeMessage = () => ({ ...message(), attachments: [{ filename: 'scan.bin', content: randomBytes(24_000).toString('base64') }] });

  async function statusRows(): Promise<number> {
    const table = await h.state.account.table(SENDS_TABLE);
    let rows = 0;
    for await (const _ of table.listEntities()) rows++;
    return rows;
  }

  it('answers 202 {id, status: "queued"} with a Location, and the worker sends it: the status becomes sent with the Message-ID the SMTP server received', async () => {
    const body = message();
    const accepted = await h.post(body, { query: '?mode=queued' });
    assert.equal(accepted.status, 202);
    const id = String(accepted.body.id);
    assert.deepEqual(accepted.body, { id, status: 'queued' });
    assert.equal(accepted.headers.location, `/api/send/${encodeURIComponent(id)}`);

    // Durable before the 202: the status row with the message in it (small enough: no outbox blob), the id on the queue (base64 JSON, as the trigger reads it).
    const stored = JSON.parse(String((await statusRow(id)).payload)) as { message: { subject: string; text: string } };
    assert.deepEqual([stored.message.subject, stored.message.text], [body.subject, body.text]);
    assert.ok(!(await outboxBlobs()).includes(`${encodeURIComponent(id)}.json`), 'a message that fits its status row has no outbox blob');
    assert.deepEqual((await h.queueContents()).visible, [{ id }]);
    const queued = await h.status(id);
    assert.equal(queued.status, 200);
    assert.equal(queued.body.status, 'queued');
    assert.equal(queued.body.attempts, 0);
    assert.equal(h.smtp.messages.length, 0, 'nothing is sent before the worker runs');

    assert.equal(await h.drainQueue(), 1);
    assert.equal(h.smtp.messages.length, 1);
    const received = await simpleParser(h.smtp.messages[0]!.raw);
    assert.equal(received.subject, body.subject);
    assert.equal(received.text?.trim(), body.text);
    assert.deepEqual(h.smtp.messages[0]!.envelope, { from: MAILBOX, to: ['alice@example.com'] });

    const sent = await h.status(id);
    assert.equal(sent.body.status, 'sent');
    assert.equal(sent.body.attempts, 1);
    assert.equal(sent.body.messageId, received.messageId);
    assert.equal(sent.body.lastError, undefined);
    assert.ok(Date.parse(String(sent.body.updatedAt)) >= Date.parse(String(sent.body.createdAt)));
    assert.equal((await statusRow(id)).payload, undefined, 'the message is dropped from the row once sent');
    assert.equal(sent.body.payload, undefined, 'the status answer never carries the message');
  });

  it('a message too large for its status row waits as the blob mail-outbox/<id>.json, which is removed once it is sent', async () => {
    const body = largeMessage();
    const id = String((await h.post(body, { query: '?mode=queued' })).body.id);
    assert.ok((await outboxBlobs()).includes(`${encodeURIComponent(id)}.json`));
    assert.equal((await statusRow(id)).payload, undefined);
    assert.equal(await h.drainQueue(), 1);
    assert.equal((await h.status(id)).body.status, 'sent');
    const received = await simpleParser(h.smtp.messages.at(-1)!.raw);
    assert.equal(received.attachments[0]?.content.toString('base64'), body.attachments[0]!.content, 'the attachment came from the blob whole');
    assert.ok(!(await outboxBlobs()).includes(`${encodeURIComponent(id)}.json`), 'the outbox entry is removed once sent');
  });

  it('the worker checks a queued message against the profile as it is now: an allowedFrom narrowed after queuing fails the send with EFROM_NOT_ALLOWED, and nothing is sent', async () => {
    const accepted = await h.post(message(), { query: '?mode=queued' });
    assert.equal(accepted.status, 202, accepted.raw);
    const id = String(accepted.body.id);
    const document = JSON.parse(String(h.useRuntime().env.MAIL_PROFILES)) as { profiles: Record<string, { send: { allowedFrom: string[] } }> };
    document.profiles.smtp!.send.allowedFrom = ['someone-else@contoso.com'];
    h.useRuntime({ MAIL_PROFILES: JSON.stringify(document) });
    assert.equal(await h.drainQueue(), 1);
    const status = await h.status(id);
    assert.equal(status.body.status, 'failed', status.raw);
    assert.equal((status.body.lastError as { code?: string }).code, 'EFROM_NOT_ALLOWED');
    assert.equal(h.smtp.messages.length, 0, 'nothing reached the SMTP server');
    assert.equal((await statusRow(id)).payload, undefined, 'a send failed for good keeps no message in its row');
  });

  it('queues on Prefer: respond-async, and on SEND_MODE=queued unless ?mode=sync asks otherwise; the default stays sync (200 sent)', async () => {
    const preferred = await h.post(message(), { headers: { prefer: 'wait=5, respond-async' } });
    assert.equal(preferred.status, 202);
    assert.equal(preferred.body.status, 'queued');

    const byDefault = await h.post(message());
    assert.equal(byDefault.status, 200);
    assert.equal(byDefault.body.status, 'sent');

    h.useRuntime({ SEND_MODE: 'queued' });
    const bySetting = await h.post(message());
    assert.equal(bySetting.status, 202);
    const forcedSync = await h.post(message(), { query: '?mode=sync' });
    assert.equal(forcedSync.status, 200);
    assert.equal(forcedSync.body.status, 'sent');

    assert.equal(h.smtp.messages.length, 2, 'only the two sync requests were sent so far');
    assert.equal(await h.drainQueue(), 2);
    assert.equal(h.smtp.messages.length, 4);
    for (const id of [preferred.body.id, bySetting.body.id]) assert.equal((await h.status(String(id))).body.status, 'sent');
  });

  it('refuses an unknown mode with 400 on "mode"', async () => {
    const answer = await h.post(message(), { query: '?mode=later' });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.code, 'EINPUT');
    assert.equal(answer.body.field, 'mode');
  });

  it('answers 404 problem ESEND_NOT_FOUND for an id it never issued', async () => {
    const answer = await h.status('00000000-0000-0000-0000-000000000000');
    assert.equal(answer.status, 404);
    assert.equal(answer.headers['content-type'], 'application/problem+json');
    assert.equal(answer.body.code, 'ESEND_NOT_FOUND');
    assert.equal(typeof answer.body.hint, 'string');
  });

  const badInputs: Array<{ name: string; body: unknown; status: number; code: string }> = [
    { name: 'an invalid address', body: { ...message(), to: 'not-an-address' }, status: 400, code: 'EINPUT' },
    { name: 'no recipients', body: { profile: 'smtp', subject: 'hi', text: 'hello' }, status: 422, code: 'ENO_RECIPIENTS' },
    { name: 'a from address the profile may not use', body: { ...message(), from: 'ceo@contoso.com' }, status: 403, code: 'EFROM_NOT_ALLOWED' },
    { name: 'an unknown profile', body: { ...message(), profile: 'nobody' }, status: 400, code: 'EPROFILE_UNKNOWN' },
    { name: 'a body that is not JSON', body: 'to=alice@example.com', status: 400, code: 'EINPUT' },
  ];
  for (const c of badInputs) {
    it(`refuses ${c.name} in queued mode with ${c.status} ${c.code}, and stores and queues nothing`, async () => {
      const rowsBefore = await statusRows();
      const blobsBefore = (await outboxBlobs()).length;
      const answer = await h.post(c.body, { query: '?mode=queued', headers: { 'idempotency-key': `bad-${randomBytes(4).toString('hex')}` } });
      assert.equal(answer.status, c.status);
      assert.equal(answer.body.code, c.code);
      assert.equal((await outboxBlobs()).length, blobsBefore);
      assert.equal(await statusRows(), rowsBefore);
      assert.equal((await h.queueContents()).total, 0);
    });
  }

  it('a queue item delivered twice, one after the other or at the same time, is sent once', async () => {
    const first = String((await h.post(message(), { query: '?mode=queued' })).body.id);
    await h.reset();
    await h.deliver({ id: first });
    await h.deliver({ id: first });
    assert.equal(h.smtp.messages.length, 1);
    assert.equal((await h.status(first)).body.attempts, 1);

    const second = String((await h.post(message(), { query: '?mode=queued' })).body.id);
    await h.reset();
    await Promise.all([h.deliver({ id: second }), h.deliver({ id: second }), h.deliver({ id: second })]);
    assert.equal(h.smtp.messages.length, 1);
    const status = await h.status(second);
    assert.equal(status.body.status, 'sent');
    assert.equal(status.body.attempts, 1);
    // A delivery that found the send in progress left one check for when that worker's hold ends, not a visible retry.
    const queue = await h.queueContents();
    assert.deepEqual(queue.visible, []);
    assert.ok(queue.total <= 2, `${queue.total} messages left on the queue`);
  });

  it('a permanent provider error fails the send at once: status failed, attempts 1, lastError with code and hint, nothing requeued, the outbox entry removed', async () => {
    h.smtp.failures = { mailFrom: { code: 550, text: '5.7.60 SMTP; Client does not have permissions to send as this sender' } };
    const id = String((await h.post(message(), { query: '?mode=queued' })).body.id);
    assert.equal(await h.drainQueue(), 1);
    const status = await h.status(id);
    assert.equal(status.body.status, 'failed');
    assert.equal(status.body.attempts, 1);
    const lastError = status.body.lastError as Record<string, unknown>;
    assert.equal(lastError.code, 'ESEND_DENIED');
    assert.match(String(lastError.hint), /Send As/);
    assert.equal(typeof lastError.detail, 'string');
    assert.equal((await h.queueContents()).total, 0);
    assert.ok(!(await outboxBlobs()).includes(`${encodeURIComponent(id)}.json`));
    assert.equal(h.smtp.messages.length, 0);
  });

  it('Graph 429 with Retry-After: the send is requeued invisible for at least Retry-After, attempts counted, then sent by the next delivery', async () => {
    const retryAfter = 120;
    h.graph.inject({ status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfter, match: /sendMail$/ });
    const id = String((await h.post(message('graph'), { query: '?mode=queued' })).body.id);
    const failedAt = Date.now();
    assert.equal(await h.drainQueue(), 1);

    const waiting = await h.status(id);
    assert.equal(waiting.body.status, 'queued');
    assert.equal(waiting.body.attempts, 1);
    assert.equal((waiting.body.lastError as Record<string, unknown>).code, 'ETHROTTLED');
    // nextAttemptAt is the next-visible time the queue service reported for the rescheduled message.
    const nextAttemptAt = Date.parse(String(waiting.body.nextAttemptAt));
    assert.ok(nextAttemptAt - failedAt >= retryAfter * 1000 - 1000, `visible again after ${(nextAttemptAt - failedAt) / 1000} s`);
    const queue = await h.queueContents();
    assert.equal(queue.total, 1, 'one message waits on the queue');
    assert.deepEqual(queue.visible, [], 'and no worker can see it yet');
    assert.equal(h.graph.sent.length, 0);

    // The host hands it over once it is visible again.
    await h.deliver({ id });
    const sent = await h.status(id);
    assert.equal(sent.body.status, 'sent');
    assert.equal(sent.body.attempts, 2);
    assert.equal(h.graph.sent.length, 1);
    assert.equal(sent.body.messageId, h.graph.sent[0]!.internetMessageId);
    assert.equal(h.graph.apiRequests('POST', /sendMail$/).filter((r) => r.status === 429).length, 1, 'the Graph client did not sleep through a Retry-After of 2 minutes itself');
  });

  it('a transient error on every attempt fails the send after SEND_MAX_ATTEMPTS, saying so in the hint', async () => {
    h.useRuntime({ SEND_MAX_ATTEMPTS: '2' });
    h.smtp.failures = { mailFrom: { code: 451, text: '4.7.500 Server busy. Please try again later' } };
    const id = String((await h.post(message(), { query: '?mode=queued' })).body.id);
    assert.equal(await h.drainQueue(), 1);
    assert.equal((await h.status(id)).body.status, 'queued');
    await h.deliver({ id }, 2);
    const status = await h.status(id);
    assert.equal(status.body.status, 'failed');
    assert.equal(status.body.attempts, 2);
    const lastError = status.body.lastError as Record<string, unknown>;
    assert.equal(lastError.code, 'ETHROTTLED');
    assert.match(String(lastError.hint), /Gave up after 2 attempts \(SEND_MAX_ATTEMPTS\)/);
    assert.equal(h.smtp.messages.length, 0);
    assert.ok(!(await outboxBlobs()).includes(`${encodeURIComponent(id)}.json`));
    // The retry scheduled after the first attempt may still come: it finds the send failed and does nothing.
    await h.deliver({ id }, 1);
    assert.equal((await h.status(id)).body.attempts, 2);
  });

  it('the queued message never appears in a log line: not its subject, body, html or attachment', async () => {
    const secretText = `body-${randomBytes(12).toString('hex')}`;
    const subject = `subject-${randomBytes(12).toString('hex')}`;
    const html = `<p>html-${randomBytes(12).toString('hex')}</p>`;
    const attachment = randomBytes(600).toString('base64');
    h.logs.splice(0);
    h.smtp.failures = { mailFrom: { code: 451, text: '4.7.500 Server busy. Please try again later', times: 1 } };
    const id = String((await h.post({ profile: 'smtp', to: 'alice@example.com', subject, text: secretText, html, attachments: [{ filename: 'a.bin', content: attachment }] }, { query: '?mode=queued' })).body.id);
    await h.drainQueue();
    await h.deliver({ id });
    assert.equal((await h.status(id)).body.status, 'sent');
    assert.ok(h.logs.length >= 3, 'accepting, retrying and sending were logged');
    for (const line of h.logs) {
      for (const value of [secretText, subject, html, attachment.slice(0, 40)]) assert.ok(!line.includes(value), `log line carries the message: ${line}`);
    }
  });

  it('when storage fails under the worker, a redelivery by the host of the same message takes over, and its last delivery leaves the send failed, not queued', async () => {
    class UnreachableOutbox extends OutboxStore {
      override async get(): Promise<string | undefined> {
        throw new MailError('ESTATE', 'could not read queued message (storage answered 503)', { hint: 'Check that the storage account in AzureWebJobsStorage is reachable.' });
      }
    }
    // Large, so that its message is read from the outbox blob, which this outbox cannot reach.
    const id = String((await h.post(largeMessage(), { query: '?mode=queued' })).body.id);
    await h.reset();
    const broken = { ...h.state, outbox: new UnreachableOutbox(h.state.account) };
    const runtime = h.useRuntime();
    for (let dequeueCount = 1; dequeueCount <= HOST_MAX_DEQUEUE_COUNT; dequeueCount++) {
      await assert.rejects(processQueuedSend(runtime, broken, { id }, { dequeueCount, messageId: 'queue-message-1' }), (e: unknown) => e instanceof MailError && e.code === 'ESTATE');
      const status = await h.status(id);
      assert.equal(status.body.attempts, dequeueCount, 'each redelivery of the same message took the send over at once');
      assert.equal(status.body.status, dequeueCount < HOST_MAX_DEQUEUE_COUNT ? 'sending' : 'failed');
    }
    const lastError = (await h.status(id)).body.lastError as Record<string, unknown>;
    assert.equal(lastError.code, 'ESTATE');
    assert.match(String(lastError.hint), /mail-send-poison/);
    assert.equal((await h.queueContents()).total, 0, 'no check was queued for a redelivery');
    assert.equal(h.smtp.messages.length, 0);
  });

  it('a malformed queue item or an id without a send is dropped without an error', async () => {
    await h.deliver({ nothing: 'here' });
    await h.deliver({ id: 'no-such-send' });
    assert.equal(h.smtp.messages.length, 0);
  });
});
