import { tableKey } from './keys.js';
import { STATE_NAMES, stateError, statusOf, type StorageAccount } from './storage.js';

/**
 * Stable ids of delivered messages, one row per profile and id in table `maildelivered`.
 * It is what keeps a resynchronised cursor (changed UIDVALIDITY, expired delta token) or a
 * cursor write lost in a crash from delivering a message twice.
 */
export class DedupeStore {
  constructor(private readonly account: StorageAccount) {}

  async has(profile: string, id: string, options: { abortSignal?: AbortSignal } = {}): Promise<boolean> {
    const table = await this.account.table(STATE_NAMES.delivered);
    try {
      await table.getEntity(profile, tableKey(id), { abortSignal: options.abortSignal, queryOptions: { select: ['PartitionKey'] } });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw stateError(error, `could not look up message ${id} of profile "${profile}"`);
    }
  }

  async mark(profile: string, id: string, details: { providerId: string; outcome: 'delivered' | 'deadLettered' }, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const table = await this.account.table(STATE_NAMES.delivered);
    try {
      await table.upsertEntity({ partitionKey: profile, rowKey: tableKey(id), providerId: details.providerId, outcome: details.outcome }, 'Replace', { abortSignal: options.abortSignal });
    } catch (error) {
      throw stateError(error, `could not record message ${id} of profile "${profile}" as delivered`);
    }
  }
}
