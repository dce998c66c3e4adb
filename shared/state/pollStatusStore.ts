import type { TableClient, TableEntity } from '@azure/data-tables';
import { z } from 'zod';
import { untilAborted } from '../abort.js';
import { MailError } from '../errors.js';
import { writeRowIfUnchanged } from './conditionalWrite.js';
import { tableKey } from './keys.js';
import { stateError, statusOf, type StorageAccount } from './storage.js';

/** The table holding one row per receiving profile: how its last poll went. */
export const POLL_STATUS_TABLE = 'mailpollstatus';

/** Every row is in one partition: health reads them all with one query, and there are few (one per profile). */
const PARTITION = 'poll';

/** The outcomes worth recording; `leased` (another worker polled) is recorded by that worker. */
export const POLL_OUTCOMES = ['completed', 'failed', 'aborted'] as const;
export type PollOutcome = (typeof POLL_OUTCOMES)[number];

export interface PollStatusError {
  code: string;
  /** Redacted before it reaches the store. */
  message: string;
  hint?: string;
  at: string;
}

/** What the last poll counted. */
export interface PollCounts {
  delivered: number;
  filtered: number;
  duplicates: number;
  deadLettered: number;
  /** Of deadLettered, over receive.filters.maxSizeBytes. */
  oversized: number;
  durationMs: number;
}

export interface PollStatusRecord {
  profile: string;
  lastPollAt: string;
  lastStatus: PollOutcome;
  /** The end of the last poll that read the mailbox to the end. */
  lastCompletedAt?: string;
  /** The end of the last poll that delivered at least one message. */
  lastDeliveredAt?: string;
  /** Failed polls since the last one that did not fail. */
  consecutiveFailures: number;
  /** The last failure, kept after the mailbox recovers (with its time) so that an intermittent fault stays visible. */
  lastError?: PollStatusError;
  lastCounts: PollCounts;
}

export interface StoredPollStatus {
  /** Undefined when the row exists but cannot be read; `unreadable` says why, and the next poll's record replaces it. */
  record: PollStatusRecord | undefined;
  unreadable?: string;
  etag: string;
}

const rowSchema = z.object({
  profile: z.string(),
  lastPollAt: z.string(),
  lastStatus: z.enum(POLL_OUTCOMES),
  lastCompletedAt: z.string().optional(),
  lastDeliveredAt: z.string().optional(),
  consecutiveFailures: z.number().int().nonnegative(),
  lastErrorCode: z.string().optional(),
  lastErrorMessage: z.string().optional(),
  lastErrorHint: z.string().optional(),
  lastErrorAt: z.string().optional(),
  delivered: z.number().int().nonnegative(),
  filtered: z.number().int().nonnegative(),
  duplicates: z.number().int().nonnegative(),
  deadLettered: z.number().int().nonnegative(),
  // Rows written before oversized mail was counted have none.
  oversized: z.number().int().nonnegative().default(0),
  durationMs: z.number().nonnegative(),
});
type PollStatusRow = z.infer<typeof rowSchema>;

function toEntity(record: PollStatusRecord): TableEntity<PollStatusRow> {
  const { lastError, lastCounts, ...rest } = record;
  const row: PollStatusRow = {
    ...rest,
    ...lastCounts,
    ...(lastError && { lastErrorCode: lastError.code, lastErrorMessage: lastError.message, lastErrorHint: lastError.hint, lastErrorAt: lastError.at }),
  };
  // The Tables SDK would send an undefined property as null: leave it out instead.
  const defined = Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined)) as PollStatusRow;
  return { partitionKey: PARTITION, rowKey: tableKey(record.profile), ...defined };
}

/** A row is ours, but a row written by another version of the app, or edited by hand, may not parse. */
function fromEntity(entity: Record<string, unknown> & { etag: string }): StoredPollStatus {
  const row = rowSchema.safeParse(entity);
  if (!row.success) {
    const issue = row.error.issues[0];
    return { record: undefined, unreadable: `${issue?.path.join('.') || 'row'}: ${issue?.message ?? 'invalid'}`, etag: entity.etag };
  }
  const { lastErrorCode, lastErrorMessage, lastErrorHint, lastErrorAt, delivered, filtered, duplicates, deadLettered, oversized, durationMs, ...rest } = row.data;
  const record: PollStatusRecord = {
    ...rest,
    lastCounts: { delivered, filtered, duplicates, deadLettered, oversized, durationMs },
    ...(lastErrorCode !== undefined && {
      lastError: { code: lastErrorCode, message: lastErrorMessage ?? '', ...(lastErrorHint !== undefined && { hint: lastErrorHint }), at: lastErrorAt ?? rest.lastPollAt },
    }),
  };
  return { record, etag: entity.etag };
}

/**
 * The outcome of the last poll of each receiving profile, in table `mailpollstatus`, for the
 * health endpoints. Writes are conditional on the row's ETag: two polls recorded at once
 * (pollNow next to the queue's poll) must not lose a failure count.
 */
export class PollStatusStore {
  constructor(private readonly account: StorageAccount) {}

  async get(profile: string, options: { abortSignal?: AbortSignal } = {}): Promise<StoredPollStatus | undefined> {
    let entity: Record<string, unknown> & { etag: string };
    try {
      const table = await this.table(options.abortSignal);
      entity = await table.getEntity<Record<string, unknown>>(PARTITION, tableKey(profile), { abortSignal: options.abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw stateError(error, `could not read the poll status of profile "${profile}"`);
    }
    return fromEntity(entity);
  }

  /** Writes the row if it is still at `etag` (absent when undefined); another writer in between is ESTATE_CONFLICT. */
  async put(record: PollStatusRecord, etag: string | undefined, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    await writeRowIfUnchanged(this.table(options.abortSignal), toEntity(record), etag, {
      ...options,
      what: `the poll status of profile "${record.profile}"`,
      conflict: (cause) => new MailError('ESTATE_CONFLICT', `the poll status of profile "${record.profile}" was changed by another worker`, {
        profile: record.profile,
        hint: 'Another poll of this profile recorded its outcome at the same time; read the row again and retry.',
        cause,
      }),
    });
  }

  /** Every recorded profile by name, including ones no longer configured (the caller picks). */
  async list(options: { abortSignal?: AbortSignal } = {}): Promise<Map<string, StoredPollStatus>> {
    const { odata } = require('@azure/data-tables') as typeof import('@azure/data-tables');
    const records = new Map<string, StoredPollStatus>();
    try {
      const table = await this.table(options.abortSignal);
      for await (const entity of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: odata`PartitionKey eq ${PARTITION}` }, abortSignal: options.abortSignal })) {
        // The row key is the tableKey (percent-encoding) of the profile name, readable or not.
        records.set(decodeURIComponent(entity.rowKey ?? ''), fromEntity(entity));
      }
    } catch (error) {
      throw stateError(error, 'could not read the poll statuses');
    }
    return records;
  }

  /** Creating the table (first use in this process) takes no signal of its own; a health check must not wait on it forever. */
  private table(abortSignal: AbortSignal | undefined): Promise<TableClient> {
    return untilAborted(this.account.table(POLL_STATUS_TABLE), abortSignal);
  }
}
