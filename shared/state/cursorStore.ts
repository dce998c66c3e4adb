import type { GetTableEntityResponse, TableEntity, TableEntityResult } from '@azure/data-tables';
import { z } from 'zod';
import { MailError } from '../errors.js';
import { tableKey } from './keys.js';
import { STATE_NAMES, stateError, statusOf, type StorageAccount } from './storage.js';

/** A reader's cursor, opaque JSON to this store (what each transport keeps: shared/transports/types.ts ReaderCursor). */
type ReaderCursor = Record<string, unknown>;

/** Which reader a cursor belongs to: a cursor of another mailbox or transport is meaningless. */
export interface CursorOwner {
  profile: string;
  mailbox: string;
  via: string;
  folder: string;
}

export interface StoredCursor {
  cursor: ReaderCursor | undefined;
  /** The row's ETag, for the conditional write that follows; undefined when there is no row yet. */
  etag: string | undefined;
  /** Why the row holds no usable cursor (changed by hand or by another tool): the reader starts over, and the next write replaces the row. */
  unreadable?: string;
}

/**
 * A string property holds at most 64 KiB (32 Ki UTF-16 characters), an entity 1 MiB; a
 * POP3 UIDL set or a Graph deltaLink can outgrow one property, so the JSON is split.
 * docs: https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model#property-types
 */
const CHUNK_CHARS = 30_000;
const MAX_CHUNKS = 30;

type CursorRow = { via: string; mailbox: string; chunks: number; [chunk: `cursor${number}`]: string };

const storedJson = z.record(z.string(), z.unknown());

/** Reader cursors, one row per profile and folder in table `mailcursors`, written with ETag conditions. */
export class CursorStore {
  constructor(private readonly account: StorageAccount) {}

  async read(owner: CursorOwner, options: { abortSignal?: AbortSignal } = {}): Promise<StoredCursor> {
    const table = await this.account.table(STATE_NAMES.cursors);
    let row: GetTableEntityResponse<TableEntityResult<CursorRow>>;
    try {
      row = await table.getEntity<CursorRow>(owner.profile, tableKey(owner.folder), { abortSignal: options.abortSignal });
    } catch (error) {
      if (statusOf(error) === 404) return { cursor: undefined, etag: undefined };
      throw stateError(error, `could not read the cursor of profile "${owner.profile}"`);
    }
    if (row.via !== owner.via || row.mailbox !== owner.mailbox) return { cursor: undefined, etag: row.etag };
    const stored = cursorOf(row);
    return 'cursor' in stored ? { cursor: stored.cursor, etag: row.etag } : { cursor: undefined, etag: row.etag, unreadable: stored.unreadable };
  }

  /**
   * Stores the cursor if the row is still at `etag` (absent when undefined) and returns the
   * new ETag. A lost race means another worker owns the mailbox now: ESTATE_CONFLICT.
   */
  async write(owner: CursorOwner, cursor: ReaderCursor, etag: string | undefined, options: { abortSignal?: AbortSignal } = {}): Promise<string> {
    const json = JSON.stringify(cursor);
    const chunks = Math.max(1, Math.ceil(json.length / CHUNK_CHARS));
    if (chunks > MAX_CHUNKS) {
      throw new MailError('ESTATE', `the cursor of profile "${owner.profile}" is ${json.length} characters, more than a table row holds`, {
        profile: owner.profile,
        hint: 'Use afterFetch "delete" or "move" so that the set of messages a cursor must remember stays small.',
      });
    }
    const entity: TableEntity<CursorRow> = { partitionKey: owner.profile, rowKey: tableKey(owner.folder), via: owner.via, mailbox: owner.mailbox, chunks };
    for (let i = 0; i < chunks; i++) entity[`cursor${i}`] = json.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
    const table = await this.account.table(STATE_NAMES.cursors);
    try {
      const response = etag === undefined
        ? await table.createEntity(entity, { abortSignal: options.abortSignal })
        : await table.updateEntity(entity, 'Replace', { etag, abortSignal: options.abortSignal });
      if (!response.etag) throw new Error('the table service returned no ETag');
      return response.etag;
    } catch (error) {
      const status = statusOf(error);
      if (status === 409 || status === 412) {
        throw new MailError('ESTATE_CONFLICT', `the cursor of profile "${owner.profile}" was changed by another worker`, {
          profile: owner.profile,
          hint: 'Another poll of this mailbox wrote its cursor; this poll stopped without advancing. Nothing is lost.',
          cause: error,
        });
      }
      throw stateError(error, `could not write the cursor of profile "${owner.profile}"`);
    }
  }
}

/**
 * The cursor a row holds, or why it holds none. An unreadable cursor is treated as none, as an
 * expired delta token is: the reader starts over and the dedupe table, which keeps every
 * delivered id, keeps that from delivering anything twice, while starting from the beginning
 * loses nothing. Refusing it instead would stop the mailbox until someone deleted the row.
 */
function cursorOf(row: CursorRow): { cursor: ReaderCursor } | { unreadable: string } {
  const chunks: unknown = row.chunks;
  if (typeof chunks !== 'number' || !Number.isInteger(chunks) || chunks < 1 || chunks > MAX_CHUNKS) return { unreadable: 'its chunk count is not valid' };
  const parts = Array.from({ length: chunks }, (_, i): unknown => row[`cursor${i}`]);
  if (!parts.every((part) => typeof part === 'string')) return { unreadable: 'a chunk of it is missing' };
  let json: unknown;
  try {
    json = JSON.parse(parts.join(''));
  } catch {
    // The parser's message quotes the row; its reason is all the log needs.
    return { unreadable: 'its JSON does not parse' };
  }
  const cursor = storedJson.safeParse(json);
  return cursor.success ? { cursor: cursor.data } : { unreadable: 'its JSON is not an object' };
}
