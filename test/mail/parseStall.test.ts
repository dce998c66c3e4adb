import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMailError } from '../../shared/errors.js';
import { parseMessage } from '../../shared/mail/parse.js';
import { CORPUS_PROFILE, corpus } from '../fixtures/corpus.js';
import { applyMutation } from '../fuzz/mimeMutations.js';

/**
 * Found by the fuzz suite (seed -1972209030): with CR CR LF line ends in part of a forwarded
 * message, mailparser has every byte and never finishes. Before the parse watchdog that held the
 * mailbox's poll until its deadline at every poll; now the source is EPARSE and dead-lettered.
 */
describe('a source mailparser never finishes is EPARSE, not a hung poll', () => {
  it('the fuzz suite\'s counterexample ends EPARSE, as a whole and in chunks', async () => {
    const seed = (await corpus()).find((m) => m.name === 'forwarded-message')!;
    const raw = applyMutation(seed.raw, { kind: 'lineEnds', style: '\r\r\n', from: 942, to: 349 });
    const ctx = { profile: CORPUS_PROFILE, via: 'file' as const, providerId: 'stall.eml', receivedAt: new Date('2024-03-01T09:00:00Z') };
    for (const input of [raw, () => { const { Readable } = require('node:stream') as typeof import('node:stream'); return Readable.from([raw.subarray(0, 100), raw.subarray(100)]); }]) {
      const error = await parseMessage(typeof input === 'function' ? input() : input, ctx).then(() => undefined, (e: unknown) => e);
      assert.ok(isMailError(error), String(error));
      assert.equal(error.code, 'EPARSE');
      assert.match(error.message, /message\/rfc822 part/);
    }
  });
});
