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
 * Reads one row, lets `change` decide from what it holds, and writes the result only if no other
 * instance wrote the row meanwhile (its ETag, or insert-if-absent for a new row); on a lost race
 * it reads again and decides again, after a short random pause so that racing instances spread out.
 */
export async function changeRow<T>(account: StorageAccount, key: { partitionKey: string; rowKey: string }, change: (row: Row | undefined) => RowChange<T>, options: { abortSignal?: AbortSignal } = {}): Promise<T> {
  const table = await account.table(GOVERNOR_TABLE);
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    let current: (Row & { etag: string }) | undefined;
    try {
      current = await table.getEntity<Row>(key.partitionKey, key.rowKey, { abortSignal: options.abortSignal });
    } catch (error) {
      if (statusOf(error) !== 404) throw stateError(error, `could not read governor row ${key.partitionKey}`);
    }
    const decided = change(current);
    if (decided.write === undefined) return decided.result;
    const entity = { ...decided.write, partitionKey: key.partitionKey, rowKey: key.rowKey };
    try {
      if (current === undefined) await table.createEntity(entity, { abortSignal: options.abortSignal });
      else await table.updateEntity(entity, 'Replace', { etag: current.etag, abortSignal: options.abortSignal });
      return decided.result;
    } catch (error) {
      const status = statusOf(error);
      if (status !== 409 && status !== 412) throw stateError(error, `could not write governor row ${key.partitionKey}`);
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
