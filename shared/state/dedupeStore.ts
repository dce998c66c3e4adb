import type { TransactionAction } from '@azure/data-tables';
import { tableKey } from './keys.js';
import { STATE_NAMES, stateError, type StorageAccount } from './storage.js';

/** What is recorded of one message that was delivered, or dead-lettered (unparseable, or refused by the sink). */
export interface DeliveryRecord {
  id: string;
  providerId: string;
  outcome: 'delivered' | 'deadLettered';
  /** Why it was dead-lettered: EPARSE or ESINK_REJECTED. */
  errorCode?: string;
}

/**
 * A $filter may hold at most 15 comparisons: one for the PartitionKey leaves 14 RowKeys per query.
 * docs: https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities
 */
const IDS_PER_QUERY = 14;

/**
 * An entity group transaction holds at most 100 operations, all in one partition, each entity once.
 * docs: https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions
 */
const RECORDS_PER_TRANSACTION = 100;

/**
 * Stable ids of delivered and dead-lettered messages, one row per profile and id in table `maildelivered`.
 * It is what keeps a resynchronised cursor (changed UIDVALIDITY, expired delta token) or a
 * cursor write lost in a crash from delivering a message twice. Lookups and records take many
 * ids at once: one request per message each way was most of what a poll spent.
 */
export class DedupeStore {
  constructor(private readonly account: StorageAccount) {}

  /** Those of `ids` recorded for `profile`. */
  async recorded(profile: string, ids: readonly string[], options: { abortSignal?: AbortSignal } = {}): Promise<Set<string>> {
    const { odata } = require('@azure/data-tables') as typeof import('@azure/data-tables');
    const table = await this.account.table(STATE_NAMES.delivered);
    const byKey = new Map(ids.map((id) => [tableKey(id), id]));
    const keys = [...byKey.keys()];
    const found = new Set<string>();
    const slices = Array.from({ length: Math.ceil(keys.length / IDS_PER_QUERY) }, (_, i) => keys.slice(i * IDS_PER_QUERY, (i + 1) * IDS_PER_QUERY));
    try {
      await Promise.all(slices.map(async (slice) => {
        const filter = `${odata`PartitionKey eq ${profile}`} and (${slice.map((key) => odata`RowKey eq ${key}`).join(' or ')})`;
        for await (const row of table.listEntities<{ rowKey: string }>({ queryOptions: { filter, select: ['RowKey'] }, abortSignal: options.abortSignal })) {
          const id = byKey.get(row.rowKey);
          if (id !== undefined) found.add(id);
        }
      }));
    } catch (error) {
      throw stateError(error, `could not look up ${ids.length} message ids of profile "${profile}"`);
    }
    return found;
  }

  /** Records every one of `records` (the last one wins for an id given twice), in transactions of up to 100. */
  async mark(profile: string, records: readonly DeliveryRecord[], options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const table = await this.account.table(STATE_NAMES.delivered);
    const actions: TransactionAction[] = [...new Map(records.map((r) => [tableKey(r.id), r])).entries()].map(([rowKey, r]) => [
      'upsert',
      { partitionKey: profile, rowKey, providerId: r.providerId, outcome: r.outcome, ...(r.errorCode !== undefined && { errorCode: r.errorCode }) },
      'Replace',
    ]);
    try {
      for (let i = 0; i < actions.length; i += RECORDS_PER_TRANSACTION) {
        await table.submitTransaction(actions.slice(i, i + RECORDS_PER_TRANSACTION), { abortSignal: options.abortSignal });
      }
    } catch (error) {
      throw stateError(error, `could not record ${records.length} delivered messages of profile "${profile}"`);
    }
  }
}
