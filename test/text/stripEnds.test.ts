import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { stripEnds } from '../../shared/text.js';
import { idempotencyKeyOf } from '../../shared/send/acceptSend.js';
import { parseMessage } from '../../shared/mail/parse.js';
import { CORPUS_PROFILE } from '../fixtures/corpus.js';

/** The regular expression stripEnds replaces, for short inputs where its quadratic time does not matter. */
const byRegExp = (value: string, set: string, ends: 'both' | 'end') => {
  const cls = `[${set.replace(/[\\\]^-]/g, '\\$&')}]+`;
  return value.replace(new RegExp(ends === 'both' ? `^${cls}|${cls}$` : `${cls}$`, 'gu'), '');
};

describe('stripEnds: the characters of a set off the ends of a string, in linear time', () => {
  it('answers what the regular expression answered, for any string and set', () => {
    const chars = fc.constantFrom('.', ' ', '\t', '/', 'a', '\u00a0', '-', ']');
    fc.assert(
      fc.property(fc.string({ unit: chars, maxLength: 40 }), fc.string({ unit: chars, minLength: 1, maxLength: 4 }), fc.constantFrom('both' as const, 'end' as const), (value, set, ends) => {
        assert.equal(stripEnds(value, set, ends), byRegExp(value, set, ends));
      }),
    );
  });

  // A hang detector, not a speed figure: with the regular expression each of these took minutes
  // (the fuzz suite's counterexample: 656,392 tabs in an attachment's file name held a poll).
  it('a run of 600,000 of the set that does not reach the end is a single pass', { timeout: 30_000 }, () => {
    const run = ' '.repeat(600_000);
    assert.equal(stripEnds(`${run}x${run}y`, ' '), `x${run}y`);
    assert.equal(stripEnds(`a${'/'.repeat(600_000)}b`, '/', 'end'), `a${'/'.repeat(600_000)}b`);
  });

  it('an attachment whose file name holds 600,000 tabs is parsed, its safe name without them at the ends', { timeout: 30_000 }, async () => {
    const name = `notes.${'\t'.repeat(600_000)}txt`;
    const raw = Buffer.from(
      ['From: a@example.org', 'Date: Fri, 01 Mar 2024 09:00:00 +0000', 'Content-Type: multipart/mixed; boundary="b"', '', '--b', 'Content-Type: text/plain', `Content-Disposition: attachment; filename="${name}"`, '', 'hi', '--b--', ''].join('\r\n'),
    );
    const message = await parseMessage(raw, { profile: CORPUS_PROFILE, via: 'file', providerId: 'tabs.eml', receivedAt: new Date('2024-03-01T09:00:00Z') });
    // Tabs are spaces in a name; cut at 200 characters (the "extension" is too long to keep), then trimmed again.
    assert.equal(message.attachments[0]?.safeFilename, 'notes');
    assert.equal(message.attachments[0]?.filename, `notes.${' '.repeat(600_000)}txt`);
  });

  it('an Idempotency-Key of 600,000 spaces around one character is refused as too long, at once', { timeout: 30_000 }, () => {
    const spaces = ' '.repeat(300_000);
    assert.throws(() => idempotencyKeyOf(`${spaces}k${spaces}x`), /1 to 255 printable ASCII/);
    assert.equal(idempotencyKeyOf(`${spaces}k${spaces}`), 'k');
  });
});
