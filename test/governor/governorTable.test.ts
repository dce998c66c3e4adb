import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { randomUUID } from 'node:crypto';
import { changeRow, GOVERNOR_TABLE, numberField } from '../../shared/governor/governorTable.js';
import { storageAccount, type StorageAccount } from '../../shared/state/storage.js';
import { AzuritePeer } from '../peers/azurite.js';

/** Counts the table requests an account's governor table client makes. */
async function counted(account: StorageAccount): Promise<{ reads: number; writes: number; lostRaces: number }> {
  const table = await account.table(GOVERNOR_TABLE);
  const counts = { reads: 0, writes: 0, lostRaces: 0 };
  const wrap = <K extends 'getEntity' | 'createEntity' | 'updateEntity'>(name: K, kind: 'reads' | 'writes') => {
    const original = table[name].bind(table) as (...args: unknown[]) => Promise<unknown>;
    (table as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      counts[kind]++;
      try {
        return await original(...args);
      } catch (error) {
        if (kind === 'writes') counts.lostRaces++;
        throw error;
      }
    };
  };
  wrap('getEntity', 'reads');
  wrap('createEntity', 'writes');
  wrap('updateEntity', 'writes');
  return counts;
}

const increment = (row: Record<string, unknown> | undefined) => ({ write: { n: numberField(row, 'n') + 1 }, result: numberField(row, 'n') + 1 });

describe('governor rows: ETag-conditional changes, one at a time within an instance, from what it last knew', () => {
  const azurite = new AzuritePeer();
  before(() => azurite.start());
  after(() => azurite.stop());

  it('40 concurrent changes of one row in one instance: 40 writes, no lost race, one read; the row counts 40', async () => {
    const account = storageAccount(azurite.connectionString);
    const counts = await counted(account);
    const key = { partitionKey: `p-${randomUUID()}`, rowKey: 'pace' };
    const results = await Promise.all(Array.from({ length: 40 }, () => changeRow(account, key, increment)));
    assert.deepEqual([...results].sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i + 1), 'each change saw the one before it');
    assert.deepEqual(counts, { reads: 1, writes: 40, lostRaces: 0 });
  });

  it('two instances taking turns lose no change: a write from out-of-date knowledge fails on the ETag and is decided again from a fresh read', async () => {
    const a = storageAccount(azurite.connectionString);
    const b = storageAccount(azurite.connectionString);
    const countsA = await counted(a);
    const key = { partitionKey: `p-${randomUUID()}`, rowKey: 'pace' };
    assert.equal(await changeRow(a, key, increment), 1);
    assert.equal(await changeRow(b, key, increment), 2);
    assert.equal(await changeRow(a, key, increment), 3, 'a decided again after b had written');
    assert.equal(countsA.lostRaces, 1);
    const both = await Promise.all(Array.from({ length: 20 }, (_, i) => changeRow(i % 2 ? a : b, key, increment)));
    assert.equal(Math.max(...both), 23);
    assert.equal(await changeRow(b, key, (row) => ({ result: numberField(row, 'n') })), 23);
  });

  it('a decision to write nothing is taken from a fresh read, not from what the instance last knew', async () => {
    const a = storageAccount(azurite.connectionString);
    const b = storageAccount(azurite.connectionString);
    const key = { partitionKey: `p-${randomUUID()}`, rowKey: 'pace' };
    await changeRow(a, key, increment);
    await changeRow(b, key, increment);
    assert.equal(await changeRow(a, key, (row) => ({ result: numberField(row, 'n') })), 2);
  });
});
