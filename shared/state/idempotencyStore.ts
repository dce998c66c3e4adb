import { z } from 'zod';
import { MailError } from '../errors.js';
import { tableKey } from './keys.js';
import { stateError, statusOf, type StorageAccount } from './storage.js';

/** The table mapping (profile, Idempotency-Key) to the send the key was first used for. */
export const IDEMPOTENCY_TABLE = 'mailidempotency';

/** How long a key stands for its first request; after that it may be used again (as Stripe does). */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface IdempotencyRecord {
  /** The send the key was first used for. */
  id: string;
  /** SHA-256 of the first request, to tell a repeat from a different request under the same key. */
  requestHash: string;
  createdAt: string;
}

export type IdempotencyClaim =
  | { claimed: true; etag: string }
  | { claimed: false; record: IdempotencyRecord };

export interface IdempotencyStoreOptions {
  /** @default IDEMPOTENCY_TTL_MS */
  ttlMs?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

const rowSchema = z.object({ id: z.string(), requestHash: z.string(), createdAt: z.string() });

/**
 * Idempotency keys per profile in table `mailidempotency`. A key is claimed by inserting its
 * row, which the table accepts once: of two requests racing with one key, exactly one claims
 * it and the other finds the first one's id. An expired row is taken over with its ETag, so
 * that two late requests cannot both take it over.
 */
export class IdempotencyStore {
  private readonly ttlMs: number;
  private readonly now: () => Date;

  constructor(private readonly account: StorageAccount, options: IdempotencyStoreOptions = {}) {
    this.ttlMs = options.ttlMs ?? IDEMPOTENCY_TTL_MS;
    this.now = options.now ?? (() => new Date());
  }

  /** Claims `key` for `record.id`, or returns the record of the request that holds it. */
  async claim(profile: string, key: string, record: Omit<IdempotencyRecord, 'createdAt'>, options: { abortSignal?: AbortSignal } = {}): Promise<IdempotencyClaim> {
    const table = await this.account.table(IDEMPOTENCY_TABLE);
    const entity = { partitionKey: tableKey(profile), rowKey: tableKey(key), ...record, createdAt: this.now().toISOString() };
    const what = `idempotency key of profile "${profile}"`;
    // Each pass either claims, finds a live holder, or loses a takeover race to another request
    // (whose row is then live): a third pass is never needed, the bound is for safety.
    for (let pass = 0; pass < 3; pass++) {
      try {
        const created = await table.createEntity(entity, { abortSignal: options.abortSignal });
        return { claimed: true, etag: created.etag ?? '*' };
      } catch (error) {
        if (statusOf(error) !== 409) throw stateError(error, `could not store the ${what}`);
      }
      let existing: Record<string, unknown> & { etag: string };
      try {
        existing = await table.getEntity<Record<string, unknown>>(entity.partitionKey, entity.rowKey, { abortSignal: options.abortSignal });
      } catch (error) {
        // Removed between our insert and this read (a released key): try the insert again.
        if (statusOf(error) === 404) continue;
        throw stateError(error, `could not read the ${what}`);
      }
      const held = rowSchema.safeParse(existing);
      if (!held.success) throw new MailError('ESTATE', `the ${what} is not readable`, { hint: `Remove the row from table ${IDEMPOTENCY_TABLE}.` });
      if (this.now().getTime() - Date.parse(held.data.createdAt) < this.ttlMs) return { claimed: false, record: held.data };
      try {
        const replaced = await table.updateEntity(entity, 'Replace', { etag: existing.etag, abortSignal: options.abortSignal });
        return { claimed: true, etag: replaced.etag ?? '*' };
      } catch (error) {
        if (statusOf(error) !== 412) throw stateError(error, `could not store the ${what}`);
      }
    }
    throw new MailError('ESTATE', `the ${what} kept changing while it was claimed`, { hint: 'Send the request again.' });
  }

  /**
   * Gives a claimed key up (the request did not get far enough to have a result worth
   * replaying), unless another request has claimed it since.
   */
  async release(profile: string, key: string, etag: string, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const table = await this.account.table(IDEMPOTENCY_TABLE);
    try {
      await table.deleteEntity(tableKey(profile), tableKey(key), { etag, abortSignal: options.abortSignal });
    } catch (error) {
      const status = statusOf(error);
      if (status !== 404 && status !== 412) throw stateError(error, `could not release the idempotency key of profile "${profile}"`);
    }
  }
}
