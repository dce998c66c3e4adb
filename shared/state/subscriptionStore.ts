import type { TableClient, TableEntity } from '@azure/data-tables';
import { z } from 'zod';
import { untilAborted } from '../abort.js';
import { MailError } from '../errors.js';
import { registerSensitive } from '../redact.js';
import { writeRowIfUnchanged } from './conditionalWrite.js';
import { tableKey } from './keys.js';
import type { PollStatusError } from './pollStatusStore.js';
import { stateError, statusOf, type StorageAccount } from './storage.js';

/** The table of push profiles' subscriptions (one row each) and their poll-pending markers. */
export const SUBSCRIPTIONS_TABLE = 'mailsubscriptions';

const SUBSCRIPTION_PARTITION = 'subscription';
const PENDING_PARTITION = 'pollPending';

export interface SubscriptionRecord {
  profile: string;
  /** The provider's subscription, when one was made; absent after a failed first attempt. */
  subscriptionId?: string;
  /** The secret the provider sends back with each notification: never logged, never answered. */
  clientState?: string;
  resource?: string;
  expiresAt?: string;
  /** When the subscription was last created or renewed. */
  lastRenewedAt?: string;
  lastAttemptAt: string;
  /** Failed attempts (create or renew) since the last one that succeeded. */
  consecutiveFailures: number;
  /** The last failure, kept after a success (with its time) so that an intermittent fault stays visible. */
  lastError?: PollStatusError;
}

export interface StoredSubscription {
  record: SubscriptionRecord;
  etag: string;
}

const rowSchema = z.object({
  profile: z.string(),
  subscriptionId: z.string().optional(),
  clientState: z.string().optional(),
  resource: z.string().optional(),
  expiresAt: z.string().optional(),
  lastRenewedAt: z.string().optional(),
  lastAttemptAt: z.string(),
  consecutiveFailures: z.number().int().nonnegative(),
  lastErrorCode: z.string().optional(),
  lastErrorMessage: z.string().optional(),
  lastErrorHint: z.string().optional(),
  lastErrorAt: z.string().optional(),
});
type SubscriptionRow = z.infer<typeof rowSchema>;

function toEntity(record: SubscriptionRecord): TableEntity<SubscriptionRow> {
  const { lastError, ...rest } = record;
  const row: SubscriptionRow = { ...rest, ...(lastError && { lastErrorCode: lastError.code, lastErrorMessage: lastError.message, lastErrorHint: lastError.hint, lastErrorAt: lastError.at }) };
  // The Tables SDK would send an undefined property as null: leave it out instead.
  const defined = Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined)) as SubscriptionRow;
  return { partitionKey: SUBSCRIPTION_PARTITION, rowKey: tableKey(record.profile), ...defined };
}

/** A row that does not parse (another version of the app, a hand edit) counts as none: the next attempt replaces it. */
function fromEntity(entity: Record<string, unknown> & { etag: string }): StoredSubscription | undefined {
  const row = rowSchema.safeParse(entity);
  if (!row.success) return undefined;
  const { lastErrorCode, lastErrorMessage, lastErrorHint, lastErrorAt, ...rest } = row.data;
  // Read from storage, it may reach an error message through a provider's echo: redact it like any secret.
  registerSensitive(rest.clientState);
  return {
    record: { ...rest, ...(lastErrorCode !== undefined && { lastError: { code: lastErrorCode, message: lastErrorMessage ?? '', ...(lastErrorHint !== undefined && { hint: lastErrorHint }), at: lastErrorAt ?? rest.lastAttemptAt } }) },
    etag: entity.etag,
  };
}

/**
 * The subscription of each push profile (receive.push) in table `mailsubscriptions`: its id,
 * clientState, expiry and how the last attempt to create or renew it went. Writes are conditional
 * on the row's ETag. The same table holds the poll-pending markers that coalesce a burst of
 * notifications into one poll (claimPoll, clearPoll).
 */
export class SubscriptionStore {
  constructor(private readonly account: StorageAccount) {}

  async get(profile: string, options: { abortSignal?: AbortSignal } = {}): Promise<StoredSubscription | undefined> {
    try {
      const table = await this.table(options.abortSignal);
      return fromEntity(await table.getEntity<Record<string, unknown>>(SUBSCRIPTION_PARTITION, tableKey(profile), { abortSignal: options.abortSignal }));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw stateError(error, `could not read the subscription of profile "${profile}"`);
    }
  }

  /** The row of the subscription the provider calls `subscriptionId`; undefined when no profile has it. */
  async find(subscriptionId: string, options: { abortSignal?: AbortSignal } = {}): Promise<SubscriptionRecord | undefined> {
    const { odata } = require('@azure/data-tables') as typeof import('@azure/data-tables');
    try {
      const table = await this.table(options.abortSignal);
      const filter = odata`PartitionKey eq ${SUBSCRIPTION_PARTITION} and subscriptionId eq ${subscriptionId}`;
      for await (const entity of table.listEntities<Record<string, unknown>>({ queryOptions: { filter }, abortSignal: options.abortSignal })) {
        const stored = fromEntity(entity);
        if (stored) return stored.record;
      }
      return undefined;
    } catch (error) {
      throw stateError(error, 'could not look up a subscription');
    }
  }

  /** Every push profile's row by profile name, including ones no longer configured. */
  async list(options: { abortSignal?: AbortSignal } = {}): Promise<Map<string, SubscriptionRecord>> {
    const { odata } = require('@azure/data-tables') as typeof import('@azure/data-tables');
    const records = new Map<string, SubscriptionRecord>();
    try {
      const table = await this.table(options.abortSignal);
      for await (const entity of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`PartitionKey eq ${SUBSCRIPTION_PARTITION}` }, abortSignal: options.abortSignal })) {
        const stored = fromEntity(entity);
        if (stored) records.set(stored.record.profile, stored.record);
      }
    } catch (error) {
      throw stateError(error, 'could not read the subscriptions');
    }
    return records;
  }

  /** Writes the row if it is still at `etag` (absent when undefined); another writer in between is ESTATE_CONFLICT. */
  async put(record: SubscriptionRecord, etag: string | undefined, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    await writeRowIfUnchanged(this.table(options.abortSignal), toEntity(record), etag, {
      ...options,
      what: `the subscription of profile "${record.profile}"`,
      conflict: (cause) => new MailError('ESTATE_CONFLICT', `the subscription of profile "${record.profile}" was changed by another worker`, { profile: record.profile, hint: 'Another instance renewed it at the same time; the next renewal reads it again.', cause }),
    });
  }

  /**
   * Marks a poll of `profile` as pending: true when this caller set the marker (and so enqueues
   * the poll), false when one is pending already. A marker older than `staleAfterMs` (its poll was
   * lost: a crash, a queue message that never ran) is taken over, conditionally on its ETag, so a
   * crash cannot stop the profile's notifications from ever polling again.
   */
  async claimPoll(profile: string, options: { now: Date; staleAfterMs: number; abortSignal?: AbortSignal }): Promise<boolean> {
    const entity = { partitionKey: PENDING_PARTITION, rowKey: tableKey(profile), requestedAt: options.now.toISOString() };
    try {
      const table = await this.table(options.abortSignal);
      try {
        await table.createEntity(entity, { abortSignal: options.abortSignal });
        return true;
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
      }
      const pending = await table.getEntity<{ requestedAt?: string }>(PENDING_PARTITION, tableKey(profile), { abortSignal: options.abortSignal });
      const at = Date.parse(pending.requestedAt ?? '');
      if (Number.isFinite(at) && options.now.getTime() - at < options.staleAfterMs) return false;
      await table.updateEntity(entity, 'Replace', { etag: pending.etag, abortSignal: options.abortSignal });
      return true;
    } catch (error) {
      // Another notification took it over or the poll cleared it in between: either way a poll is on its way or running.
      if (statusOf(error) === 412 || statusOf(error) === 404) return false;
      throw stateError(error, `could not mark a poll of profile "${profile}" as pending`);
    }
  }

  /** Clears the marker when the poll starts: a notification from now on asks for another poll. */
  async clearPoll(profile: string, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    try {
      const table = await this.table(options.abortSignal);
      await table.deleteEntity(PENDING_PARTITION, tableKey(profile), { abortSignal: options.abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw stateError(error, `could not clear the pending poll of profile "${profile}"`);
    }
  }

  private table(abortSignal: AbortSignal | undefined): Promise<TableClient> {
    return untilAborted(this.account.table(SUBSCRIPTIONS_TABLE), abortSignal);
  }
}
