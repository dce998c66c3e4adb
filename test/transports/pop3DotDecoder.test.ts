import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DotDecoder } from '../../shared/transports/pop3/pop3Client.js';
import { dotStuff } from '../peers/pop3Peer.js';

function decode(wire: Buffer, split: number[]): { body: Buffer; rest: Buffer | undefined } {
  const decoder = new DotDecoder();
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...split, wire.length]) {
    const { output, rest } = decoder.feed(wire.subarray(from, to));
    out.push(...output);
    if (rest !== undefined) return { body: Buffer.concat(out), rest: Buffer.concat([rest, wire.subarray(to)]) };
    from = to;
  }
  return { body: Buffer.concat(out), rest: undefined };
}

describe('POP3 multi-line answers: dot-stuffing undone as they stream (RFC 1939 section 3)', () => {
  const bodies = [
    'plain\r\nlines\r\n',
    '.leading dot\r\n..two\r\n.\r\n...\r\n',
    'bare\nLF.\n.not a line start after bare LF\r\n',
    '\r\n\r\n.\r\n',
    '.\rodd\r\n',
    'no dot at all, one line\r\n',
  ];

  it('every body comes back byte for byte, whatever the chunk boundaries, and what follows the terminator is left over', () => {
    for (const text of bodies) {
      const body = Buffer.from(text, 'latin1');
      const wire = Buffer.concat([dotStuff(body), Buffer.from('+OK next\r\n')]);
      for (let a = 0; a <= wire.length; a++) {
        for (const b of [a, a + 1, a + 2, a + 5]) {
          const split = [a, Math.min(b, wire.length)].filter((x, i, all) => i === 0 || x > all[i - 1]!);
          const { body: got, rest } = decode(wire, split);
          assert.equal(got.toString('latin1'), text, `body ${JSON.stringify(text)} split at ${split}`);
          assert.equal(rest?.toString(), '+OK next\r\n');
        }
      }
    }
  });

  it('an empty answer is just the terminator', () => {
    const { body, rest } = decode(Buffer.from('.\r\n'), []);
    assert.equal(body.length, 0);
    assert.equal(rest?.length, 0);
  });

  it('an answer without its terminator yet is not finished', () => {
    const { body, rest } = decode(Buffer.from('line\r\n.'), []);
    assert.equal(body.toString(), 'line\r\n');
    assert.equal(rest, undefined);
  });
});
