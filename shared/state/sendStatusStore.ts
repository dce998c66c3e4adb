import type { TableEntity } from '@azure/data-tables';
import { z } from 'zod';
import { MailError } from '../errors.js';
import { tableKey } from './keys.js';
import { stateError, statusOf, type StorageAccount } from './storage.js';

/** The table holding one status row per send. */
export const SENDS_TABLE = 'mailsends';

/** `unknown`: an attempt's outcome was lost and could not be looked up, and send.unknownOutcome is "atMostOnce": it is never sent again. */
export const SEND_STATUSES = ['queued', 'sending', 'sent', 'failed', 'unknown'] as const;
export type SendStatus = (typeof SEND_STATUSES)[number];

/**
 * How an attempt whose outcome was unknown was settled before anything was sent again: its
 * Message-ID found in the mailbox's sent mail (so not sent again), looked for and not found (so
 * sent again), or not looked for (the sender cannot look; send.unknownOutcome decided).
 */
export const RECONCILED = ['foundInSentItems', 'notFound', 'notChecked'] as const;
export type Reconciled = (typeof RECONCILED)[number];

/** What went wrong last, as the API shows it: the code, the (redacted) detail and the hint. */
export interface SendError {
  code: string;
  detail: string;
  hint?: string;
  /** The HTTP status the error answers with, so that a replayed sync outcome answers the same. */
  status: number;
}

export interface SendRecord {
  id: string;
  profile: string;
  /** The caller that made the send, when callers are configured: only it (or an admin) may read its status. */
  caller?: string;
  /** How the request was accepted: `queued` answered 202, `sync` sent inside the request. */
  mode: 'queued' | 'sync';
  status: SendStatus;
  /** Send attempts started so far. */
  attempts: number;
  createdAt: string;
  updatedAt: string;
  messageId?: string;
  via?: string;
  lastError?: SendError;
  /** When the queue shows the next attempt to a worker (a retry waiting out back-off or Retry-After). */
  nextAttemptAt?: string;
  /** Until when the worker that marked the send `sending` owns it; after that another may take over. */
  sendingUntil?: string;
  /** The queue message the sending worker got, so that the host's redelivery of it is told from another message. */
  sendingBy?: string;
  /** The last attempt ended without knowing whether the provider took the message: the next one looks first. */
  outcomeUnknown?: boolean;
  /** How the last attempt whose outcome was unknown was settled. */
  reconciled?: Reconciled;
  /**
   * A queued message's outbox document (shared/send/storedMessage.ts) kept in its status row, when
   * it fits (fitsInStatusRow): one write and one read fewer per send than a blob, and no blob to
   * delete. A larger one is in the outbox container. Kept while the send may still be attempted:
   * a row written as sent, failed or unknown drops it. Never part of a status answer.
   */
  payload?: string;
}

/**
 * The longest outbox document kept in the status row: a Table string property holds 64 KiB of
 * UTF-16 (32,768 characters), and the row's other properties need room too. Attachments make
 * most messages longer; those go to the outbox blob.
 */
export const STATUS_ROW_PAYLOAD_MAX_CHARS = 30_000;

export function fitsInStatusRow(document: string): boolean {
  return document.length <= STATUS_ROW_PAYLOAD_MAX_CHARS;
}

const SETTLED_STATUSES: ReadonlySet<SendStatus> = new Set(['sent', 'failed', 'unknown']);

/** A send in one of these is settled: nothing of it is attempted again. */
export function isSettled(status: SendStatus): boolean {
  return SETTLED_STATUSES.has(status);
}

export interface StoredSendRecord {
  record: SendRecord;
  etag: string;
}

const ROW_KEY = 'send';

const rowSchema = z.object({
  id: z.string(),
  profile: z.string(),
  caller: z.string().optional(),
  mode: z.enum(['queued', 'sync']),
  status: z.enum(SEND_STATUSES),
  attempts: z.number().int().nonnegative(),
  createdAt: z.string(),
  updatedAt: z.string(),
  messageId: z.string().optional(),
  via: z.string().optional(),
  lastErrorCode: z.string().optional(),
  lastErrorDetail: z.string().optional(),
  lastErrorHint: z.string().optional(),
  lastErrorStatus: z.number().int().optional(),
  nextAttemptAt: z.string().optional(),
  sendingUntil: z.string().optional(),
  sendingBy: z.string().optional(),
  outcomeUnknown: z.boolean().optional(),
  reconciled: z.enum(RECONCILED).optional(),
  payload: z.string().optional(),
});
type SendRow = z.infer<typeof rowSchema>;

function toEntity(record: SendRecord): TableEntity<SendRow> {
  const { lastError, payload, ...rest } = record;
  const row: SendRow = {
    ...rest,
    // A settled send is never attempted again: its message is not kept.
    ...(payload !== undefined && !isSettled(record.status) && { payload }),
    ...(lastError ? { lastErrorCode: lastError.code, lastErrorDetail: lastError.detail, lastErrorHint: lastError.hint, lastErrorStatus: lastError.status } : {}),
  };
  // The Tables SDK would send an undefined property as null: leave it out instead.
  const defined = Object.fromEntries(Object.entries(row).filter(([, value]) => value !== undefined)) as SendRow;
  return { partitionKey: tableKey(record.id), rowKey: ROW_KEY, ...defined };
}

function fromRow(row: SendRow): SendRecord {
  const { lastErrorCode, lastErrorDetail, lastErrorHint, lastErrorStatus, ...rest } = row;
  return {
    ...rest,
    ...(lastErrorCode !== undefined ? { lastError: { code: lastErrorCode, detail: lastErrorDetail ?? '', hint: lastErrorHint, status: lastErrorStatus ?? 502 } } : {}),
  };
}

/**
 * The status of every send that was queued or carried an idempotency key, one row per id in
 * table `mailsends` (the id is the partition: status reads and writes are point operations).
 * Writes are conditional on the row's ETag, which is what keeps two workers that got the same
 * queue message from both sending it.
 */
export class SendStatusStore {
  constructor(private readonly account: StorageAccount) {}

  /** Inserts the first row of a send; an existing id is ESTATE_CONFLICT. */
  async create(record: SendRecord, options: { abortSignal?: AbortSignal } = {}): Promise<string> {
    const table = await this.account.table(SENDS_TABLE);
    try {
      const response = await table.createEntity(toEntity(record), { abortSignal: options.abortSignal });
      return etagOf(response.etag);
    } catch (error) {
      throw conflictOr(error, record.id, `could not store the status of send ${record.id}`);
    }
  }

  /**
   * How many sends of a profile wait or are being sent (`queued`, `sending`), counted up to
   * `limit` (the query stops there). A scan of the table: the caller caches it (shared/send/backlog.ts).
   */
  async countPending(profile: string, limit: number, options: { abortSignal?: AbortSignal } = {}): Promise<number> {
    const { odata } = require('@azure/data-tables') as typeof import('@azure/data-tables');
    const table = await this.account.table(SENDS_TABLE);
    let count = 0;
    try {
      const filter = `${odata`profile eq ${profile}`} and (status eq 'queued' or status eq 'sending')`;
      for await (const page of table.listEntities({ queryOptions: { filter, select: ['RowKey'] }, abortSignal: options.abortSignal }).byPage({ maxPageSize: 1000 })) {
        count += page.length;
        if (count >= limit) return count;
      }
    } catch (error) {
      throw stateError(error, `could not count the pending sends of profile ${profile}`);
    }
    return count;
  }

  async get(id: string, options: { abortSignal?: AbortSignal } = {}): Promise<StoredSendRecord | undefined> {
    const table = await this.account.table(SENDS_TABLE);
    let entity: Record<string, unknown> & { etag: string };
    try {
      entity = await table.getEntity<Record<string, unknown>>(tableKey(id), ROW_KEY, { abortSignal: options.abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw stateError(error, `could not read the status of send ${id}`);
    }
    const row = rowSchema.safeParse(entity);
    if (!row.success) throw new MailError('ESTATE', `the status row of send ${id} is not readable: ${row.error.issues[0]?.message ?? 'invalid'}`, { hint: `Inspect or remove the row ${id} in table ${SENDS_TABLE}.` });
    return { record: fromRow(row.data), etag: entity.etag };
  }

  /**
   * Replaces the row if it is still at `etag` (`*`: whatever it holds) and returns the new
   * ETag; another writer in between is ESTATE_CONFLICT.
   */
  async replace(record: SendRecord, etag: string, options: { abortSignal?: AbortSignal } = {}): Promise<string> {
    const table = await this.account.table(SENDS_TABLE);
    try {
      const response = await table.updateEntity(toEntity(record), 'Replace', { etag, abortSignal: options.abortSignal });
      return etagOf(response.etag);
    } catch (error) {
      throw conflictOr(error, record.id, `could not update the status of send ${record.id}`);
    }
  }

  async remove(id: string, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const table = await this.account.table(SENDS_TABLE);
    try {
      await table.deleteEntity(tableKey(id), ROW_KEY, { abortSignal: options.abortSignal });
    } catch (error) {
      if (statusOf(error) !== 404) throw stateError(error, `could not remove the status of send ${id}`);
    }
  }
}

function etagOf(etag: string | undefined): string {
  if (!etag) throw new Error('the table service returned no ETag');
  return etag;
}

function conflictOr(error: unknown, id: string, what: string): MailError {
  const status = statusOf(error);
  if (status === 409 || status === 412) {
    return new MailError('ESTATE_CONFLICT', `the status of send ${id} was changed by another worker`, {
      hint: 'Another request or worker handled this send at the same time; its outcome stands.',
      cause: error,
    });
  }
  return stateError(error, what);
}
