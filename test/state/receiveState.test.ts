import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { isMailError } from '../../shared/errors.js';
import { MailState, type ReceiveState } from '../../shared/state/index.js';
import { MailboxLeases } from '../../shared/state/mailboxLease.js';
import { tableKey } from '../../shared/state/keys.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { AzuritePeer } from '../peers/azurite.js';

describe('receive state in Azure Storage (Azurite)', () => {
  const azurite = new AzuritePeer();
  let state: ReceiveState;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    await azurite.start();
    env = { AzureWebJobsStorage: azurite.connectionString };
    state = new MailState(env.AzureWebJobsStorage).receive;
  });
  after(() => azurite.stop());

  const owner = { profile: 'support', mailbox: 'support@contoso.com', via: 'imap', folder: 'Inbox/Tickets #1?' };

  it('a cursor is absent until written, then read back as written', async () => {
    assert.deepEqual(await state.cursors.read(owner), { cursor: undefined, etag: undefined });
    const etag = await state.cursors.write(owner, { uidValidity: 7, lastUid: 42 }, undefined);
    const stored = await state.cursors.read(owner);
    assert.deepEqual(stored.cursor, { uidValidity: 7, lastUid: 42 });
    assert.equal(stored.etag, etag);
  });

  it('a cursor write against a stale ETag fails with ESTATE_CONFLICT and leaves the stored cursor alone', async () => {
    const other = { ...owner, folder: 'Conflicts' };
    const first = await state.cursors.write(other, { lastUid: 1 }, undefined);
    await state.cursors.write(other, { lastUid: 2 }, first);
    await assert.rejects(state.cursors.write(other, { lastUid: 3 }, first), (e) => isMailError(e) && e.code === 'ESTATE_CONFLICT');
    await assert.rejects(state.cursors.write(other, { lastUid: 4 }, undefined), (e) => isMailError(e) && e.code === 'ESTATE_CONFLICT');
    assert.deepEqual((await state.cursors.read(other)).cursor, { lastUid: 2 });
  });

  it('a cursor larger than one table property (a long POP3 UIDL set) round-trips', async () => {
    const big = { ...owner, via: 'pop3', folder: 'Big' };
    const seen = Array.from({ length: 8000 }, (_, i) => `UIDL-${String(i).padStart(8, '0')}-${'x'.repeat(4)}`);
    await state.cursors.write(big, { seen }, undefined);
    assert.deepEqual((await state.cursors.read(big)).cursor, { seen });
  });

  it('a cursor stored for another transport or mailbox is not handed to this reader', async () => {
    const switched = { ...owner, folder: 'Switched' };
    const etag = await state.cursors.write(switched, { lastUid: 9 }, undefined);
    const read = await state.cursors.read({ ...switched, via: 'graph' });
    assert.equal(read.cursor, undefined);
    assert.equal(read.etag, etag, 'the row is still replaced conditionally');
  });

  it('a cursor row whose JSON is unreadable reads as no cursor, says why, and keeps its ETag so the next write replaces it', async () => {
    const damaged = { ...owner, via: 'pop3', folder: 'Damaged' };
    const written = await state.cursors.write(damaged, { seen: ['a', 'b'] }, undefined);
    const table = await state.account.table(STATE_NAMES.cursors);
    const row = { partitionKey: damaged.profile, rowKey: tableKey(damaged.folder), via: damaged.via, mailbox: damaged.mailbox, chunks: 1, cursor0: '{"seen":["a","b"]}' };
    const variants: Record<string, unknown>[] = [{ cursor0: '{"seen": ["a", "b"' }, { cursor0: 'null' }, { chunks: 2 }, { chunks: 'two' }];
    let etag = written;
    for (const variant of variants) {
      await table.updateEntity({ ...row, ...variant }, 'Replace');
      const read = await state.cursors.read(damaged);
      assert.equal(read.cursor, undefined, JSON.stringify(variant));
      assert.match(read.unreadable ?? '', /JSON|chunk/, JSON.stringify(variant));
      assert.ok(read.etag !== undefined && read.etag !== etag);
      etag = read.etag;
    }
    await state.cursors.write(damaged, { seen: ['c'] }, etag);
    assert.deepEqual(await state.cursors.read(damaged), { cursor: { seen: ['c'] }, etag: (await table.getEntity(damaged.profile, row.rowKey)).etag });
  });

  it('the dedupe table remembers delivered ids per profile', async () => {
    assert.deepEqual(await state.dedupe.recorded('support', ['abc/def']), new Set());
    await state.dedupe.mark('support', [{ id: 'abc/def', providerId: '7:1', outcome: 'delivered' }]);
    assert.deepEqual(await state.dedupe.recorded('support', ['abc/def', 'other']), new Set(['abc/def']));
    assert.deepEqual(await state.dedupe.recorded('other', ['abc/def']), new Set());
  });

  it('many ids are recorded and looked up at once, beyond one query and one transaction, quotes and all', async () => {
    const ids = Array.from({ length: 230 }, (_, i) => `${i}'s id #${i}?`);
    await state.dedupe.mark('bulk', ids.filter((_, i) => i % 3 === 0).map((id, i) => ({ id, providerId: `7:${i}`, outcome: i % 2 ? 'delivered' : 'deadLettered' })));
    assert.deepEqual(await state.dedupe.recorded('bulk', ids), new Set(ids.filter((_, i) => i % 3 === 0)));
    assert.deepEqual(await state.dedupe.recorded('bulk', []), new Set());
  });

  it('an id given twice in one record batch is recorded once, the last entry winning', async () => {
    await state.dedupe.mark('twice', [{ id: 'same', providerId: '7:1', outcome: 'deadLettered' }, { id: 'same', providerId: '7:2', outcome: 'delivered' }]);
    const table = await state.account.table(STATE_NAMES.delivered);
    const rows = [];
    for await (const row of table.listEntities<{ providerId: string; outcome: string }>({ queryOptions: { filter: "PartitionKey eq 'twice'" } })) rows.push([row.providerId, row.outcome]);
    assert.deepEqual(rows, [['7:2', 'delivered']]);
  });

  it('a mailbox lease is exclusive until released', async () => {
    const first = await state.leases.acquire('Shared@Contoso.com');
    assert.ok(first);
    assert.equal(await state.leases.acquire('shared@contoso.com'), undefined);
    await first.release();
    const again = await state.leases.acquire('shared@contoso.com');
    assert.ok(again);
    await again.release();
  });

  it('a held lease is renewed while polling, and a lease taken away aborts the poll holding it', async () => {
    // Each renewal must answer within the interval: 500 ms leaves a loaded machine room for that.
    const leases = new MailboxLeases(state.account, { durationSeconds: 15, renewEveryMs: 500 });
    const held = await leases.acquire('renewed@contoso.com');
    assert.ok(held);
    await new Promise((r) => setTimeout(r, 1_300));
    assert.equal(held.signal.aborted, false, 'renewals succeed while the lease is ours');
    const container = await state.account.container(STATE_NAMES.leases);
    await container.getBlockBlobClient(encodeURIComponent('renewed@contoso.com')).getBlobLeaseClient().breakLease(0);
    // Bounded wait for the next renewal to be refused, instead of a fixed sleep that a slow machine overruns.
    for (let waited = 0; waited < 5000 && !held.signal.aborted; waited += 50) await new Promise((r) => setTimeout(r, 50));
    assert.equal(held.signal.aborted, true, 'the refused renewal counted as a lost lease');
    assert.ok(isMailError(held.signal.reason) && held.signal.reason.code === 'ESTATE');
    await held.release();
  });

  it('a lease renewal that gets no answer aborts the poll holding it, before the lease could lapse', async () => {
    const leases = new MailboxLeases(state.account, { durationSeconds: 15, renewEveryMs: 200 });
    const held = await leases.acquire('unanswered@contoso.com');
    assert.ok(held);
    azurite.freeze();
    try {
      // Bounded wait: a lapse happens after 15 s, so the poll must hear of it well before.
      for (let waited = 0; waited < 5000 && !held.signal.aborted; waited += 50) await new Promise((r) => setTimeout(r, 50));
    } finally {
      azurite.thaw();
    }
    assert.equal(held.signal.aborted, true, 'the hanging renewal counted as a lost lease');
    assert.ok(isMailError(held.signal.reason) && held.signal.reason.code === 'ESTATE');
    await held.release();
  });

  it('a dead-lettered source is streamed to blob whole, with the error next to it', async () => {
    const chunk = Buffer.alloc(1024 * 1024, 'a');
    let produced = 0;
    const total = 12;
    const source = new Readable({
      read() {
        produced++;
        this.push(produced <= total ? chunk : null);
      },
    });
    const ref = await state.deadLetters.put({ profile: 'support', providerId: '7:13', error: { code: 'EPARSE', message: 'broken' }, source });
    const container = await state.account.container(STATE_NAMES.deadLetter);
    const record = JSON.parse((await container.getBlockBlobClient(ref.name).downloadToBuffer()).toString()) as { error: { code: string }; source: { name: string }; providerId: string };
    assert.equal(record.error.code, 'EPARSE');
    assert.equal(record.providerId, '7:13');
    const raw = await container.getBlockBlobClient(record.source.name).getProperties();
    assert.equal(raw.contentLength, total * chunk.length);
    assert.equal(raw.contentType, 'message/rfc822');
  });
});
