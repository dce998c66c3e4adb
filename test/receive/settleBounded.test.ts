import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { settleBounded, settledPrefix } from '../../shared/receive/settleBounded.js';

describe('bounded tasks of a poll window', () => {
  it('runs at most the limit at once, and an item marked alone with nothing else in flight', async () => {
    const items = ['s', 's', 's', 's', 'L', 's', 's', 'L', 'L', 's'];
    let inFlight = 0;
    const seen: Array<{ item: string; inFlight: number }> = [];
    const outcomes = await settleBounded(items, { limit: 3, alone: (item) => item === 'L' }, async (item, index) => {
      inFlight++;
      seen.push({ item, inFlight });
      await tick();
      inFlight--;
      return index * 10;
    });
    assert.ok(seen.every((s) => s.inFlight <= 3));
    assert.ok(seen.filter((s) => s.item === 'L').every((s) => s.inFlight === 1), 'a large item never shares');
    assert.deepEqual(settledPrefix(outcomes), { values: items.map((_, i) => i * 10) });
  });

  it('starts nothing after the first failure, lets the running ones finish, and the prefix ends before the failure', async () => {
    const started: number[] = [];
    const outcomes = await settleBounded([0, 1, 2, 3, 4, 5, 6, 7], { limit: 3 }, async (item) => {
      started.push(item);
      await tick();
      if (item === 1) throw new Error('down');
      await tick();
      return item;
    });
    assert.deepEqual(started, [0, 1, 2], 'three in flight; 1 fails before a worker is free, so nothing more starts');
    assert.deepEqual(outcomes.map((o) => (o === undefined ? 'not started' : o.ok ? o.value : 'failed')), [0, 'failed', 2, 'not started', 'not started', 'not started', 'not started', 'not started']);
    const prefix = settledPrefix(outcomes);
    assert.deepEqual(prefix.values, [0]);
    assert.equal((prefix.failure?.error as Error).message, 'down');
  });
});
