import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { HOOK_SECRET, ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';

const ticket = (n: number) =>
  composeEml({ from: `customer${n}@fabrikam.com`, to: 'support@contoso.com', subject: `Ticket ${n}`, text: `Body ${n}`, messageId: `<guarantee-${n}@fabrikam.com>` });

describe('delivery guarantees: at-least-once with stable ids, retries, refusals', () => {
  const h = new ReceiveHarness();
  before(() => h.start());
  after(() => h.stop());
  beforeEach(() => h.webhook.reset());

  it('a crash after delivery and before anything is recorded redelivers the same message with the same id', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(1), 1);
    const runtime = h.runtime({ crash: h.fileProfile(inbox) });
    const dedupe = h.state.dedupe;
    const mark = dedupe.mark;
    dedupe.mark = async () => {
      throw new Error('process killed');
    };
    let first;
    try {
      first = await pollMailbox(runtime, 'crash');
    } finally {
      dedupe.mark = mark;
    }
    assert.equal(first.status, 'failed');
    assert.equal(first.delivered, 0);
    assert.equal(first.cursor, undefined, 'the cursor did not move past the unrecorded message');

    const second = await pollMailbox(runtime, 'crash');
    assert.deepEqual([second.status, second.delivered], ['completed', 1]);
    const [a, b] = h.webhook.received;
    assert.equal(h.webhook.received.length, 2);
    assert.equal(a!.headers['x-mail-id'], b!.headers['x-mail-id']);
    assert.deepEqual(JSON.parse(a!.body), JSON.parse(b!.body), 'the redelivered JSON is the same message');
  });

  it('a crash at the cursor write, after the delivery was recorded, does not deliver again', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(2), 1);
    dropEml(inbox, 'two.eml', await ticket(3), 2);
    const runtime = h.runtime({ cursorcrash: h.fileProfile(inbox) });
    const cursors = h.state.cursors;
    const write = cursors.write;
    cursors.write = async () => {
      throw new Error('process killed');
    };
    let first;
    try {
      first = await pollMailbox(runtime, 'cursorcrash');
    } finally {
      cursors.write = write;
    }
    assert.equal(first.status, 'failed');
    assert.equal(first.delivered, 2);
    assert.equal(first.cursor, undefined);

    const second = await pollMailbox(runtime, 'cursorcrash');
    assert.deepEqual([second.status, second.delivered, second.duplicates], ['completed', 0, 2]);
    assert.deepEqual(second.cursor, { seen: ['one.eml', 'two.eml'] });
    assert.equal(h.webhook.received.length, 2);
  });

  it('webhook 5xx answers are retried with backoff until accepted, with the same id each time', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(4), 1);
    const runtime = h.runtime({ flaky: h.fileProfile(inbox) });
    h.webhook.answer({ status: 503 }, { status: 500 });
    const result = await pollMailbox(runtime, 'flaky');
    assert.deepEqual([result.status, result.delivered], ['completed', 1]);
    assert.deepEqual(h.webhook.received.map((r) => r.status), [503, 500, 200]);
    assert.equal(new Set(h.webhook.received.map((r) => r.headers['x-mail-id'])).size, 1);
    assert.ok(h.webhook.received.every((r) => WebhookReceiverPeer.verify(r, HOOK_SECRET)));
  });

  it('a webhook that keeps failing stops the poll without advancing; the next poll delivers the message', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(5), 1);
    dropEml(inbox, 'two.eml', await ticket(6), 2);
    const runtime = h.runtime({ down: h.fileProfile(inbox) }, { WEBHOOK_MAX_ATTEMPTS: '3' });
    h.webhook.answer({ status: 200 }, { status: 502 }, { status: 502 }, { status: 502 });
    const first = await pollMailbox(runtime, 'down');
    assert.equal(first.status, 'failed');
    assert.equal(first.error?.code, 'ESINK_UNAVAILABLE');
    assert.equal(first.delivered, 1);
    assert.deepEqual(first.cursor, { seen: ['one.eml'] }, 'the acknowledged message is kept, the failed one is not passed');
    assert.deepEqual(h.webhook.received.map((r) => r.status), [200, 502, 502, 502], 'three attempts in all for the second message');

    const second = await pollMailbox(runtime, 'down');
    assert.deepEqual([second.status, second.delivered], ['completed', 1]);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 5', 'Ticket 6']);
  });

  it('a webhook that does not answer in time is retried like a 5xx', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(7), 1);
    const runtime = h.runtime({ slow: h.fileProfile(inbox) }, { WEBHOOK_TIMEOUT_MS: '300' });
    h.webhook.answer({ status: 200, delayMs: 2_000 });
    const result = await pollMailbox(runtime, 'slow');
    assert.deepEqual([result.status, result.delivered], ['completed', 1]);
    assert.equal(h.webhook.received.length, 2);
  });

  it('a webhook 4xx is not retried: the message is dead-lettered with its JSON, the poll goes on, and it is never sent again', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(8), 1);
    dropEml(inbox, 'two.eml', await ticket(9), 2);
    const runtime = h.runtime({ refuse: h.fileProfile(inbox) });
    h.webhook.answer({ status: 422 });
    const first = await pollMailbox(runtime, 'refuse');
    assert.deepEqual([first.status, first.deadLettered, first.delivered], ['completed', 1, 1]);
    assert.deepEqual(h.webhook.received.map((r) => r.status), [422, 200]);

    const container = await h.state.account.container(STATE_NAMES.deadLetter);
    const records: Array<{ error: { code: string }; message: DeliveredMessage }> = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'refuse/' })) {
      records.push(JSON.parse((await container.getBlockBlobClient(blob.name).downloadToBuffer()).toString()));
    }
    assert.equal(records.length, 1);
    assert.equal(records[0]!.error.code, 'ESINK_REJECTED');
    assert.equal(records[0]!.message.subject, 'Ticket 8');

    assert.equal((await pollMailbox(runtime, 'refuse')).delivered, 0);
    assert.equal(h.webhook.received.length, 2);
  });

  it('with a queue sink each message lands base64-encoded on the queue, and one over the size limit travels as a claim check', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'small.eml', await ticket(10), 1);
    const bigText = 'A long description of the outage. '.repeat(2_500);
    dropEml(inbox, 'big.eml', await composeEml({ from: 'noc@fabrikam.com', to: 'support@contoso.com', subject: 'Outage report', text: bigText, messageId: '<big@fabrikam.com>' }), 2);
    const profile = { ...h.fileProfile(inbox), receive: { via: 'file', folder: inbox, deliver: { queue: { name: 'incoming-tickets' } } } };
    const runtime = h.runtime({ queued: profile });
    const result = await pollMailbox(runtime, 'queued');
    assert.deepEqual([result.status, result.delivered], ['completed', 2]);

    const queue = await h.state.account.queue('incoming-tickets');
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 10 });
    const bodies = receivedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as Record<string, unknown>);
    assert.equal(bodies.length, 2);
    const small = bodies.find((b) => b.subject === 'Ticket 10') as unknown as DeliveredMessage;
    assert.ok(small, 'the small message is inline');
    const check = bodies.find((b) => 'claimCheck' in b) as { id: string; claimCheck: { container: string; name: string } };
    assert.ok(check, 'the large one is a claim check');
    assert.equal(check.claimCheck.container, STATE_NAMES.payloads);
    const container = await h.state.account.container(check.claimCheck.container);
    const stored = JSON.parse((await container.getBlockBlobClient(check.claimCheck.name).downloadToBuffer()).toString()) as DeliveredMessage;
    assert.equal(stored.id, check.id);
    assert.equal(stored.subject, 'Outage report');
    assert.ok(stored.text?.includes('A long description of the outage.'));
    assert.ok(Buffer.byteLength(JSON.stringify(stored)) > 48 * 1024);
  });

  it('a large attachment is streamed to mail-payloads and the delivered JSON carries its blob reference', async () => {
    const inbox = h.folder('inbox');
    const content = Buffer.alloc(600 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31 + 7) % 251;
    dropEml(inbox, 'att.eml', await composeEml({ from: 'noc@fabrikam.com', to: 'support@contoso.com', subject: 'Logs', text: 'see attached', messageId: '<att@fabrikam.com>', attachments: [{ filename: 'trace.bin', content, contentType: 'application/octet-stream' }] }), 1);
    const runtime = h.runtime({ attach: h.fileProfile(inbox) });
    assert.equal((await pollMailbox(runtime, 'attach')).delivered, 1);
    const [message] = h.webhook.accepted<DeliveredMessage>();
    const attachment = message!.attachments[0]!;
    assert.equal(attachment.content, undefined);
    assert.equal(attachment.size, content.length);
    assert.ok(attachment.blob);
    const container = await h.state.account.container(attachment.blob.container);
    assert.deepEqual(await container.getBlockBlobClient(attachment.blob.name).downloadToBuffer(), content);
  });

  it('two polls of one mailbox started together: one works, the other skips because the mailbox is leased', async () => {
    const inbox = h.folder('inbox');
    for (let n = 1; n <= 3; n++) dropEml(inbox, `m${n}.eml`, await ticket(20 + n), n);
    const runtime = h.runtime({ busy: h.fileProfile(inbox) });
    const results = await Promise.all([pollMailbox(runtime, 'busy'), pollMailbox(runtime, 'busy')]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['completed', 'leased']);
    assert.equal(results.find((r) => r.status === 'completed')!.delivered, 3);
    assert.equal(h.webhook.received.length, 3);
  });
});
