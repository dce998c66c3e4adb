import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox, type PollResult } from '../../shared/receive/pollMailbox.js';
import { tableKey } from '../../shared/state/keys.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { HOOK_SECRET, ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';

const ticket = (n: number) =>
  composeEml({ from: `customer${n}@fabrikam.com`, to: 'support@contoso.com', subject: `Ticket ${n}`, text: `Body ${n}`, messageId: `<guarantee-${n}@fabrikam.com>` });

/** Runs `poll` while `object[method]` fails as a crash or an outage would, and restores it. */
async function pollFailing<T extends object>(object: T, method: keyof T, message: string, poll: () => Promise<PollResult>): Promise<PollResult> {
  const original = object[method];
  object[method] = (async () => {
    throw new Error(message);
  }) as T[keyof T];
  try {
    return await poll();
  } finally {
    object[method] = original;
  }
}

describe('delivery guarantees: at-least-once with stable ids, retries, refusals', () => {
  const h = new ReceiveHarness();
  before(() => h.start());
  after(() => h.stop());
  beforeEach(() => h.webhook.reset());

  /** Every message on a queue (the sink writes base64 JSON), removed from it. */
  async function drainQueue(name: string): Promise<DeliveredMessage[]> {
    const queue = await h.state.account.queue(name);
    const out: DeliveredMessage[] = [];
    for (;;) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      if (receivedMessageItems.length === 0) return out;
      for (const item of receivedMessageItems) {
        out.push(JSON.parse(Buffer.from(item.messageText, 'base64').toString('utf8')) as DeliveredMessage);
        await queue.deleteMessage(item.messageId, item.popReceipt);
      }
    }
  }

  it('a crash after delivery and before anything is recorded redelivers the same message with the same id', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(1), 1);
    const runtime = h.runtime({ crash: h.fileProfile(inbox) });
    const first = await pollFailing(h.state.dedupe, 'mark', 'process killed', () => pollMailbox(runtime, 'crash'));
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
    const first = await pollFailing(h.state.cursors, 'write', 'process killed', () => pollMailbox(runtime, 'cursorcrash'));
    assert.equal(first.status, 'failed');
    assert.equal(first.delivered, 2);
    assert.equal(first.cursor, undefined);

    const second = await pollMailbox(runtime, 'cursorcrash');
    assert.deepEqual([second.status, second.delivered, second.duplicates], ['completed', 0, 2]);
    assert.deepEqual(second.cursor, { seen: ['one.eml', 'two.eml'] });
    assert.equal(h.webhook.received.length, 2);
  });

  it('a dead-lettered unparseable message is recorded as such, so a poll that lost its cursor does not dead-letter it again', async () => {
    const inbox = h.folder('inbox');
    const garbage = Buffer.from('not an e-mail message\r\n\r\nonly text\r\n');
    dropEml(inbox, 'one.eml', garbage, 1);
    dropEml(inbox, 'two.eml', await ticket(30), 2);
    const runtime = h.runtime({ deadcrash: h.fileProfile(inbox) });
    const first = await pollFailing(h.state.cursors, 'write', 'process killed', () => pollMailbox(runtime, 'deadcrash'));
    assert.deepEqual([first.status, first.deadLettered, first.delivered, first.cursor], ['failed', 1, 1, undefined]);

    const second = await pollMailbox(runtime, 'deadcrash');
    assert.deepEqual([second.status, second.deadLettered, second.delivered, second.duplicates], ['completed', 0, 0, 2]);
    const container = await h.state.account.container(STATE_NAMES.deadLetter);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'deadcrash/' })) names.push(blob.name);
    assert.equal(names.length, 2, `one dead-letter (source and error), not two: ${names.join(', ')}`);
    const table = await h.state.account.table(STATE_NAMES.delivered);
    const rows: Array<{ providerId?: unknown; outcome?: unknown; errorCode?: unknown }> = [];
    for await (const row of table.listEntities<{ providerId?: unknown; outcome?: unknown; errorCode?: unknown }>({ queryOptions: { filter: "PartitionKey eq 'deadcrash'" } })) rows.push(row);
    assert.deepEqual(rows.map((r) => [r.providerId, r.outcome, r.errorCode]).sort(), [['one.eml', 'deadLettered', 'EPARSE'], ['two.eml', 'delivered', undefined]]);
  });

  it('an unparseable message is read from the mailbox once, small or past the in-memory copy, and its dead-letter holds exactly its bytes', async () => {
    const inbox = h.folder('inbox');
    const small = Buffer.from('not an e-mail message\r\n\r\nonly text\r\n');
    const large = Buffer.concat([Buffer.from('no headers here\r\n\r\n'), Buffer.alloc(3 * 1024 * 1024, 'x')]);
    dropEml(inbox, 'small.eml', small, 1);
    dropEml(inbox, 'large.eml', large, 2);
    const runtime = h.runtime({ openonce: h.fileProfile(inbox) });
    const profile = runtime.profile('openonce') as Parameters<typeof runtime.reader>[0];
    const reader = runtime.reader(profile);
    const opens = new Map<string, number>();
    const open = reader.open.bind(reader);
    reader.open = async (options) => {
      const session = await open(options);
      const messages = session.messages.bind(session);
      session.messages = async function* (cursor, o) {
        for await (const m of messages(cursor, o)) {
          const openSource = m.openSource.bind(m);
          yield { ...m, openSource: (x) => (opens.set(m.providerId, (opens.get(m.providerId) ?? 0) + 1), openSource(x)) };
        }
      };
      return session;
    };
    const result = await pollMailbox(runtime, 'openonce');
    assert.deepEqual([result.status, result.deadLettered], ['completed', 2]);
    assert.deepEqual(Object.fromEntries(opens), { 'small.eml': 1, 'large.eml': 1 });
    const container = await h.state.account.container(STATE_NAMES.deadLetter);
    const sources = new Map<string, Buffer>();
    for await (const blob of container.listBlobsFlat({ prefix: 'openonce/' })) {
      if (blob.name.endsWith('.eml')) sources.set(blob.name.includes('large') ? 'large' : 'small', await container.getBlockBlobClient(blob.name).downloadToBuffer());
    }
    assert.ok(sources.get('small')?.equals(small), 'the small source as it was');
    assert.ok(sources.get('large')?.equals(large), 'the large source as it was');
    assert.deepEqual((await pollMailbox(runtime, 'openonce')).duplicates, 0, 'both were acknowledged: the cursor moved past them');
  });

  it('a cursor row that became unreadable is discarded with a warning naming the profile: the poll starts over, delivers what is new once and nothing twice', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(40), 1);
    dropEml(inbox, 'two.eml', await ticket(41), 2);
    const runtime = h.runtime({ damaged: h.fileProfile(inbox) });
    assert.equal((await pollMailbox(runtime, 'damaged')).delivered, 2);
    const table = await h.state.account.table(STATE_NAMES.cursors);
    const row = await table.getEntity<Record<string, unknown>>('damaged', tableKey(inbox));
    await table.updateEntity({ partitionKey: 'damaged', rowKey: tableKey(inbox), via: row.via, mailbox: row.mailbox, chunks: 1, cursor0: '{"seen":["one.e' }, 'Replace');
    dropEml(inbox, 'three.eml', await ticket(42), 3);
    h.webhook.reset();
    h.logs.length = 0;

    const second = await pollMailbox(runtime, 'damaged');
    assert.deepEqual([second.status, second.resynced, second.delivered, second.duplicates], ['completed', true, 1, 2], JSON.stringify(second.error));
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 42']);
    assert.deepEqual(second.cursor, { seen: ['one.eml', 'two.eml', 'three.eml'] }, 'the unreadable row is replaced');
    assert.ok(h.logs.some((line) => /"operation":"poll\.cursor"/.test(line) && /"profile":"damaged"/.test(line) && /unreadable/.test(line)), h.logs.join('\n'));
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

  it('storage that stops answering after a delivery was recorded: the poll still ends, reporting the cursor write that timed out next to why it stopped, and the next poll delivers nothing twice', { timeout: 60_000 }, async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await ticket(30), 1);
    dropEml(inbox, 'two.eml', await ticket(31), 2);
    const runtime = h.runtime({ outage: h.fileProfile(inbox) }, { WEBHOOK_MAX_ATTEMPTS: '1' });
    h.webhook.answer({ status: 200 }, { status: 502 });
    const dedupe = h.state.dedupe;
    const mark = dedupe.mark;
    dedupe.mark = async (...args) => {
      await mark.apply(dedupe, args);
      // From here on every storage request hangs, as in an outage that never answers.
      h.azurite.freeze();
    };
    // An unbounded clean-up would wait for good: the outage ends after 30 s, so that such a poll
    // fails the assertions below instead of hanging the suite.
    const outageEnds = setTimeout(() => h.azurite.thaw(), 30_000);
    let first: PollResult;
    try {
      first = await pollMailbox(runtime, 'outage');
    } finally {
      clearTimeout(outageEnds);
      dedupe.mark = mark;
      h.azurite.thaw();
    }
    assert.equal(first.status, 'failed');
    assert.equal(first.error?.code, 'ESINK_UNAVAILABLE', 'the reason the poll stopped is kept');
    assert.equal(first.delivered, 1);
    assert.equal(first.cursor, undefined, 'the cursor write never got through');
    assert.deepEqual(first.cleanupErrors?.map((e) => e.code), ['ESTATE']);

    // The lease could not be released either; rather than wait for it to lapse, break it.
    const leases = await h.state.account.container(STATE_NAMES.leases);
    await leases.getBlockBlobClient(encodeURIComponent(runtime.profile('outage').mailbox)).getBlobLeaseClient().breakLease(0);
    h.webhook.reset();
    // The write the poll gave up on may still land once storage answers again (then the first
    // message is not met again at all); either way nothing is delivered twice.
    const second = await pollMailbox(runtime, 'outage');
    assert.deepEqual([second.status, second.delivered], ['completed', 1], JSON.stringify(second.error));
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 31']);
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

  /** The names under a profile's attachment prefix in mail-payloads. */
  async function storedBlobs(profile: string): Promise<string[]> {
    const container = await h.state.account.container(STATE_NAMES.payloads);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: `${profile}/attachments/` })) names.push(blob.name);
    return names.sort();
  }

  it('blobs are written only for messages that are delivered: a filtered message with large attachments uploads nothing', async () => {
    const inbox = h.folder('inbox');
    const big = Buffer.alloc(400 * 1024, 5);
    const mail = (subject: string, id: string) => composeEml({ from: 'noc@fabrikam.com', to: 'support@contoso.com', subject, text: 'attached', messageId: `<${id}@fabrikam.com>`, attachments: [{ filename: 'a.bin', content: big }, { filename: 'b.bin', content: big }] });
    dropEml(inbox, 'spam.eml', await mail('Cheap SPAM offer', 'filtered-blobs'), 1);
    dropEml(inbox, 'real.eml', await mail('Real report', 'delivered-blobs'), 2);
    const runtime = h.runtime({ filteredblobs: h.fileProfile(inbox, { filters: { mode: 'ignore', keywords: ['spam'] } }) });
    const result = await pollMailbox(runtime, 'filteredblobs');
    assert.deepEqual([result.status, result.delivered, result.filtered], ['completed', 1, 1]);
    const [delivered] = h.webhook.accepted<DeliveredMessage>();
    const names = delivered!.attachments.map((a) => a.blob?.name);
    assert.equal(names.length, 2);
    assert.deepEqual(await storedBlobs('filteredblobs'), names.sort(), 'only the delivered message has blobs');
  });

  it('blob uploads per message stop at receive.maxAttachmentBlobs; the rest are listed with omitted and their size, never dropped', async () => {
    const inbox = h.folder('inbox');
    const parts = [0, 1, 2, 3, 4].map((n) => ({ filename: `part${n}.html`, content: Buffer.alloc(300 * 1024, 65 + n), contentType: 'text/html' }));
    dropEml(inbox, 'many.eml', await composeEml({ from: 'noc@fabrikam.com', to: 'support@contoso.com', subject: 'Many', text: 'attached', messageId: '<many-blobs@fabrikam.com>', attachments: parts }), 1);
    const runtime = h.runtime({ capped: h.fileProfile(inbox, { maxAttachmentBlobs: 2 }) });
    assert.equal((await pollMailbox(runtime, 'capped')).delivered, 1);
    const [message] = h.webhook.accepted<DeliveredMessage>();
    assert.deepEqual(
      message!.attachments.map((a) => [a.filename, a.size, a.blob !== undefined, a.omitted ?? null]),
      parts.map((p, i) => [p.filename, p.content.length, i < 2, i < 2 ? null : 'blobLimit']),
    );
    const stored = await storedBlobs('capped');
    assert.equal(stored.length, 2);
    // Served as bytes, never as the HTML the sender labelled them; the sender's type kept as metadata.
    const container = await h.state.account.container(STATE_NAMES.payloads);
    const properties = await container.getBlockBlobClient(stored[0]!).getProperties();
    assert.equal(properties.contentType, 'application/octet-stream');
    assert.equal(properties.metadata?.sendercontenttype, 'text/html');
  });

  it('another message reusing a delivered Message-ID is delivered with its own id and its own blobs, not taken for a duplicate', async () => {
    const inbox = h.folder('inbox');
    const mail = (subject: string, fill: number) => composeEml({ from: 'noc@fabrikam.com', to: 'support@contoso.com', subject, text: 'x', messageId: '<reused@fabrikam.com>', attachments: [{ filename: 'r.bin', content: Buffer.alloc(300 * 1024, fill) }] });
    dropEml(inbox, 'first.eml', await mail('Invoice 1', 1), 1);
    dropEml(inbox, 'second.eml', await mail('Invoice 2 (other content, same Message-ID)', 2), 2);
    const runtime = h.runtime({ reused: h.fileProfile(inbox) });
    const result = await pollMailbox(runtime, 'reused');
    assert.deepEqual([result.delivered, result.duplicates], [2, 0]);
    const [a, b] = h.webhook.accepted<DeliveredMessage>();
    assert.notEqual(a!.id, b!.id);
    assert.notEqual(a!.attachments[0]!.blob!.name, b!.attachments[0]!.blob!.name);
    const container = await h.state.account.container(STATE_NAMES.payloads);
    assert.deepEqual(await container.getBlockBlobClient(b!.attachments[0]!.blob!.name).downloadToBuffer(), Buffer.alloc(300 * 1024, 2));
  });

  it('a redelivered message stores its large attachment once, under the same name, and a duplicate adds no blob', async () => {
    const inbox = h.folder('inbox');
    const content = Buffer.alloc(400 * 1024, 3);
    const withAttachment = (messageId?: string) =>
      composeEml({ from: 'noc@fabrikam.com', to: 'support@contoso.com', subject: 'Dump', text: 'attached', ...(messageId && { messageId }), attachments: [{ filename: 'dump.bin', content }] });
    dropEml(inbox, 'one.eml', await withAttachment('<redelivered@fabrikam.com>'), 1);
    // Without a Message-ID the name comes from the header section.
    dropEml(inbox, 'two.eml', Buffer.from((await withAttachment()).toString('latin1').replace(/^Message-ID:.*\r\n/im, ''), 'latin1'), 2);
    const runtime = h.runtime({ reattach: h.fileProfile(inbox) });
    const first = await pollFailing(h.state.dedupe, 'mark', 'process killed', () => pollMailbox(runtime, 'reattach'));
    assert.equal(first.status, 'failed');
    const second = await pollMailbox(runtime, 'reattach');
    assert.deepEqual([second.status, second.delivered], ['completed', 2]);
    // The cursor forgets both, as after a resync: they are parsed again and found recorded.
    const owner = { profile: 'reattach', mailbox: runtime.profile('reattach').mailbox, via: 'file', folder: inbox };
    await h.state.cursors.write(owner, { seen: [] }, (await h.state.cursors.read(owner)).etag);
    const third = await pollMailbox(runtime, 'reattach');
    assert.deepEqual([third.status, third.duplicates, third.delivered], ['completed', 2, 0]);

    const deliveries = h.webhook.accepted<DeliveredMessage>();
    assert.equal(deliveries.length, 4);
    const names = deliveries.map((m) => m.attachments[0]?.blob?.name);
    assert.equal(names[0], names[2], 'the redelivery names the blob of the first delivery');
    assert.equal(names[1], names[3]);
    assert.notEqual(names[0], names[1]);
    const container = await h.state.account.container(STATE_NAMES.payloads);
    const stored: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'reattach/attachments/' })) stored.push(blob.name);
    assert.deepEqual(stored.sort(), [names[0], names[1]].sort(), 'no orphan blob');
    assert.deepEqual(await container.getBlockBlobClient(names[0]!).downloadToBuffer(), content);
  });

  it('with a queue sink, a message in the middle that fails keeps the cursor before it; those delivered after it are recorded and never delivered twice', async () => {
    const inbox = h.folder('inbox');
    for (let n = 1; n <= 6; n++) {
      // Message 3 is over the queue limit: it needs a claim-check blob, and that store is down.
      const text = n === 3 ? 'A long description of the outage. '.repeat(2_500) : `Body ${n}`;
      dropEml(inbox, `m${n}.eml`, await composeEml({ from: `customer${n}@fabrikam.com`, to: 'support@contoso.com', subject: `Queued ${n}`, text, messageId: `<queued-${n}@fabrikam.com>` }), n);
    }
    const queueName = 'middle-failure';
    const runtime = h.runtime({ middle: { ...h.fileProfile(inbox), receive: { via: 'file', folder: inbox, deliver: { queue: { name: queueName } } } } });
    const first = await pollFailing(h.state.payloads, 'putText', 'blob store unavailable', () => pollMailbox(runtime, 'middle'));
    assert.equal(first.status, 'failed');
    assert.deepEqual(first.cursor, { seen: ['m1.eml', 'm2.eml'] }, 'the cursor stops before the failed message');
    assert.equal(first.delivered, 5, 'the messages after it were delivered side by side and are counted');
    assert.deepEqual((await drainQueue(queueName)).map((m) => m.subject).sort(), ['Queued 1', 'Queued 2', 'Queued 4', 'Queued 5', 'Queued 6']);

    const second = await pollMailbox(runtime, 'middle');
    assert.deepEqual([second.status, second.delivered, second.duplicates], ['completed', 1, 3], JSON.stringify(second.error));
    assert.deepEqual(second.cursor, { seen: ['m1.eml', 'm2.eml', 'm3.eml', 'm4.eml', 'm5.eml', 'm6.eml'] });
    const redelivered = await drainQueue(queueName);
    assert.equal(redelivered.length, 1, 'only the failed message comes again');
    assert.ok('claimCheck' in redelivered[0]!);
  });

  it('over several windows every message is delivered once, and the same message twice in a folder, even windows apart, only once', async () => {
    const inbox = h.folder('inbox');
    for (let n = 1; n <= 60; n++) dropEml(inbox, `m${String(n).padStart(2, '0')}.eml`, await ticket(100 + n), n);
    // A copy of the first message and a copy of the second-to-last, each dropped again later.
    dropEml(inbox, 'm61.eml', await ticket(101), 61);
    dropEml(inbox, 'm62.eml', await ticket(159), 62);
    const queueName = 'many-windows';
    const runtime = h.runtime({ many: { ...h.fileProfile(inbox), receive: { via: 'file', folder: inbox, deliver: { queue: { name: queueName } } } } });

    const first = await pollMailbox(runtime, 'many');
    assert.deepEqual([first.status, first.delivered, first.duplicates], ['completed', 60, 2], JSON.stringify(first.error));
    assert.equal((first.cursor as { seen: string[] }).seen.length, 62);
    const delivered = await drainQueue(queueName);
    assert.equal(delivered.length, 60);
    assert.equal(new Set(delivered.map((m) => m.id)).size, 60);
    assert.deepEqual(delivered.map((m) => m.subject).sort(), Array.from({ length: 60 }, (_, i) => `Ticket ${101 + i}`).sort());

    const second = await pollMailbox(runtime, 'many');
    assert.deepEqual([second.status, second.delivered, second.duplicates], ['completed', 0, 0]);
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
