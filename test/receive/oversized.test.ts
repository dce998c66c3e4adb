import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { pollAndRecord } from '../../shared/receive/pollRequests.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';

/**
 * Issue 12, item 4: a message over `receive.filters.maxSizeBytes` is never a silent skip (Zammad's
 * users lost mail that way, zammad#2092): it is dead-lettered with its raw source, counted in the
 * poll result and in health, and logged as a warning naming the profile, the size and the limit.
 */
describe('oversized mail is dead-lettered with its source, not dropped', () => {
  const h = new ReceiveHarness();
  before(() => h.start());
  after(() => h.stop());

  it('over the limit: dead-lettered with exactly its bytes (past the in-memory copy too), counted, warned about, and not met again', async () => {
    const inbox = h.folder('inbox');
    const small = await composeEml({ from: 'ann@fabrikam.example', to: 'support@contoso.com', subject: 'small', text: 'fits', messageId: '<small@oversized.test>' });
    const big = await composeEml({ from: 'bob@fabrikam.example', to: 'support@contoso.com', subject: 'big', text: 'see attachment', messageId: '<big@oversized.test>', attachments: [{ filename: 'scan.bin', content: Buffer.alloc(3 * 1024 * 1024, 7) }] });
    dropEml(inbox, 'small.eml', small, 1);
    dropEml(inbox, 'big.eml', big, 2);
    h.webhook.reset();
    const lines = h.logs.length;
    const runtime = h.runtime({ sized: h.fileProfile(inbox, { filters: { maxSizeBytes: 1024 * 1024 } }) });
    const first = await pollAndRecord(runtime, 'sized');
    assert.deepEqual([first.status, first.delivered, first.deadLettered, first.oversized, first.filtered], ['completed', 1, 1, 1, 0]);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['small']);

    const container = await h.state.account.container(STATE_NAMES.deadLetter);
    const blobs = new Map<string, Buffer>();
    for await (const blob of container.listBlobsFlat({ prefix: 'sized/' })) blobs.set(blob.name.endsWith('.eml') ? 'source' : 'record', await container.getBlockBlobClient(blob.name).downloadToBuffer());
    assert.ok(blobs.get('source')?.equals(big), 'the dead-letter holds the message\'s bytes as they were');
    const record = JSON.parse(blobs.get('record')!.toString('utf8')) as { providerId: string; error: { code: string; message: string } };
    assert.deepEqual([record.providerId, record.error.code], ['big.eml', 'ETOO_LARGE']);
    assert.match(record.error.message, new RegExp(`${big.length} bytes, over receive.filters.maxSizeBytes \\(1048576\\)`));

    const warning = h.logs.slice(lines).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.operation === 'poll.oversized');
    assert.deepEqual([warning?.profile, warning?.size, warning?.limit, warning?.code], ['sized', big.length, 1024 * 1024, 'ETOO_LARGE']);

    const health = await runtime.state.pollStatus.get('sized');
    assert.equal(health?.record?.lastCounts.oversized, 1);

    const second = await pollMailbox(runtime, 'sized');
    assert.deepEqual([second.deadLettered, second.oversized, second.delivered], [0, 0, 0], 'dead-lettered once, not at every poll');
  });

  it('at the limit or without one, the same message is delivered', async () => {
    const inbox = h.folder('inbox');
    const eml = await composeEml({ from: 'ann@fabrikam.example', to: 'support@contoso.com', subject: 'exact', text: 'x'.repeat(2000), messageId: '<exact@oversized.test>' });
    dropEml(inbox, 'exact.eml', eml, 1);
    h.webhook.reset();
    const runtime = h.runtime({ exact: h.fileProfile(inbox, { filters: { maxSizeBytes: eml.length } }) });
    const result = await pollMailbox(runtime, 'exact');
    assert.deepEqual([result.delivered, result.deadLettered, result.oversized], [1, 0, 0]);
  });
});
