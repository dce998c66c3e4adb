import { MailError } from '../errors.js';
import { stateError, statusOf, type StorageAccount } from '../state/storage.js';

/** The governor's rows: a Graph request budget per app and mailbox, a send pace per sending mailbox. */
export const GOVERNOR_TABLE = 'mailgovernor';

type Row = Record<string, unknown>;

/** What a change decides: the row to write (none: leave it as it is) and the answer to give. */
export interface RowChange<T> {
  write?: Row;
  result: T;
}

/**
 * Contended rows: every send of a busy mailbox, on every instance, writes the same one; one write
 * wins per round, so tens of concurrent writers need tens of rounds. The callers' time limit ends it sooner.
 */
const MAX_PASSES = 64;

/**
 * What this process last knew of each row (its content and ETag, from its own read or write), per
 * account. A change first decides from it and writes with its ETag: one request instead of a read
 * and a write while no other instance writes the row; when one has, the write fails on the ETag and
 * the row is read again. A decision to write nothing is never taken from it (a fresh read decides).
 */
const known = new WeakMap<StorageAccount, Map<string, Row & { etag: string }>>();
/** The change running for each row in this process: changes of one row here run one at a time, so they never race each other. */
const running = new WeakMap<StorageAccount, Map<string, Promise<unknown>>>();

function mapOf<V>(maps: WeakMap<StorageAccount, Map<string, V>>, account: StorageAccount): Map<string, V> {
  let map = maps.get(account);
  if (!map) maps.set(account, (map = new Map()));
  return map;
}

/**
 * Reads one row, lets `change` decide from what it holds, and writes the result only if no other
 * instance wrote the row meanwhile (its ETag, or insert-if-absent for a new row); on a lost race
 * it reads again and decides again, after a short random pause so that racing instances spread out.
 * Within this process, changes of one row wait for each other instead of racing (see `known`).
 */
export function changeRow<T>(account: StorageAccount, key: { partitionKey: string; rowKey: string }, change: (row: Row | undefined) => RowChange<T>, options: { abortSignal?: AbortSignal } = {}): Promise<T> {
  const id = `${key.partitionKey}\n${key.rowKey}`;
  const queue = mapOf(running, account);
  const before = queue.get(id) ?? Promise.resolve();
  const mine = before.then(() => changeRowNow(account, key, id, change, options), () => changeRowNow(account, key, id, change, options));
  const settled = mine.then(() => undefined, () => undefined);
  queue.set(id, settled);
  void settled.then(() => {
    if (queue.get(id) === settled) queue.delete(id);
  });
  return mine;
}

async function changeRowNow<T>(account: StorageAccount, key: { partitionKey: string; rowKey: string }, id: string, change: (row: Row | undefined) => RowChange<T>, options: { abortSignal?: AbortSignal }): Promise<T> {
  options.abortSignal?.throwIfAborted();
  const table = await account.table(GOVERNOR_TABLE);
  const cache = mapOf(known, account);
  /** The row as storage has it now (undefined: none yet), remembered as what this process knows. */
  const read = async (): Promise<(Row & { etag: string }) | undefined> => {
    cache.delete(id);
    try {
      const row = await table.getEntity<Row>(key.partitionKey, key.rowKey, { abortSignal: options.abortSignal });
      cache.set(id, row);
      return row;
    } catch (error) {
      if (statusOf(error) !== 404) throw stateError(error, `could not read governor row ${key.partitionKey}`);
      return undefined;
    }
  };
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let fresh = !cache.has(id);
    let current = fresh ? await read() : cache.get(id);
    let decided = change(current);
    if (decided.write === undefined && !fresh) {
      // Decided from what this process knew: read the row as it is now, and decide again.
      fresh = true;
      current = await read();
      decided = change(current);
    }
    if (decided.write === undefined) return decided.result;
    const entity = { ...decided.write, partitionKey: key.partitionKey, rowKey: key.rowKey };
    try {
      const written = current === undefined
        ? await table.createEntity(entity, { abortSignal: options.abortSignal })
        : await table.updateEntity(entity, 'Replace', { etag: current.etag, abortSignal: options.abortSignal });
      if (written.etag) cache.set(id, { ...entity, etag: written.etag });
      else cache.delete(id);
      return decided.result;
    } catch (error) {
      cache.delete(id);
      const status = statusOf(error);
      if (status !== 409 && status !== 412) throw stateError(error, `could not write governor row ${key.partitionKey}`);
      // What this process knew was out of date: read again at once, without a pause.
      if (!fresh) continue;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(100, 5 * 2 ** pass)));
  }
  throw new MailError('ESTATE', `governor row ${key.partitionKey} kept changing while it was updated`, { hint: 'Many instances share this mailbox; the request may be tried again.' });
}

/** A number field of a row, or 0. */
export function numberField(row: Row | undefined, name: string): number {
  const value = row?.[name];
  // Whole numbers past Int32 may come back as Int64 (a bigint), depending on how the row was written.
  if (typeof value === 'bigint') return Number(value);
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}
