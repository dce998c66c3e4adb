import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { isMailError } from '../../shared/errors.js';
import { parseMessage } from '../../shared/mail/parse.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { SourceCopy } from '../../shared/receive/sourceCopy.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';

const PARSE_CONTEXT = { profile: { name: 'desk', mailbox: 'desk@contoso.com' }, via: 'file' as const, providerId: 'big.eml' };
/** A header section over mailparser's limit, and a body after it the parser never reads. */
const unparseable = Buffer.concat([Buffer.from('From: a@fabrikam.example\r\nX-Huge: '), Buffer.alloc(1_200_000, 'a'), Buffer.from('\r\nSubject: s\r\n\r\nbody\r\n'), Buffer.alloc(2_000_000, 'b')]);
const inChunks = (raw: Buffer) => Array.from({ length: Math.ceil(raw.length / 65_536) }, (_, i) => raw.subarray(i * 65_536, (i + 1) * 65_536));

describe('the copy of a message source kept while it is parsed', () => {
  // Found by the fuzz suite (test/fuzz/mimeSources.fuzz.ts): mailparser gives up on a header
  // section over its limit with most of the message unread. The copy stopped there too, and the
  // dead-letter then waited for a copy that would never be complete: the poll never ended, and
  // every later poll of the mailbox met the same message again (or the late write to the
  // destroyed copy was an uncaught error that ended the worker).
  it('a poll dead-letters whole a message whose header section is over the parser\'s limit, and delivers the next', { timeout: 120_000 }, async () => {
    const h = new ReceiveHarness();
    await h.start();
    try {
      const inbox = h.folder('inbox');
      dropEml(inbox, '1-huge-header.eml', unparseable, 1);
      dropEml(inbox, '2-good.eml', await composeEml({ from: 'a@fabrikam.example', to: 'desk@contoso.com', subject: 'next', text: 'hi', messageId: '<next@fabrikam.example>' }), 2);
      const runtime = h.runtime({ desk: h.fileProfile(inbox) });
      const result = await pollMailbox(runtime, 'desk');
      assert.deepEqual([result.status, result.deadLettered, result.delivered], ['completed', 1, 1]);
      const container = await h.state.account.container(STATE_NAMES.deadLetter);
      const names: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: 'desk/' })) names.push(blob.name);
      const eml = names.find((n) => n.endsWith('.eml'));
      assert.ok(eml, names.join(', '));
      assert.ok((await container.getBlockBlobClient(eml).downloadToBuffer()).equals(unparseable), 'the dead-letter holds the whole source');
      await runtime.close();
    } finally {
      await h.stop();
    }
  });

  // Found by the fuzz suite too: mailparser gives up on a header section over its limit with most
  // of the message unread, and the dead-letter kept only what had been read by then.
  it('a message the parser refuses early is kept whole, and its id is the hash of all its bytes', async () => {
    const copy = new SourceCopy(createHash('sha256'), { memoryBytes: 1024 * 1024 });
    await assert.rejects(parseMessage(copy.tap(Readable.from(inChunks(unparseable))), PARSE_CONTEXT), (error: unknown) => isMailError(error) && error.code === 'EPARSE');
    await copy.complete();
    const kept: Buffer[] = [];
    for await (const chunk of await copy.open()) kept.push(chunk as Buffer);
    assert.equal(Buffer.concat(kept).length, unparseable.length);
    assert.ok(Buffer.concat(kept).equals(unparseable));
    assert.equal(copy.digest(), createHash('sha256').update(unparseable).digest('hex'));
    await copy.dispose();
  });

  it('a spilled copy opens again as the whole source', async () => {
    const copy = new SourceCopy(createHash('sha256'), { memoryBytes: 1024 });
    const source = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(50_000, i)));
    for await (const chunk of copy.tap(Readable.from([source.subarray(0, 700_000), source.subarray(700_000)]))) void chunk;
    const again: Buffer[] = [];
    for await (const chunk of await copy.open()) again.push(chunk as Buffer);
    assert.ok(Buffer.concat(again).equals(source));
    assert.equal(copy.digest(), createHash('sha256').update(source).digest('hex'));
    await copy.dispose();
  });
});
