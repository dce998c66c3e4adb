import type { GetTableEntityResponse, TableEntity, TableEntityResult } from '@azure/data-tables';
import { MailError } from '../errors.js';
import type { ReaderCursor } from '../transports/types.js';
import { tableKey } from './keys.js';
import { STATE_NAMES, stateError, statusOf, type StorageAccount } from './storage.js';

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
}

/**
 * A string property holds at most 64 KiB (32 Ki UTF-16 characters), an entity 1 MiB; a
 * POP3 UIDL set or a Graph deltaLink can outgrow one property, so the JSON is split.
 * docs: https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model#property-types
 */
const CHUNK_CHARS = 30_000;
const MAX_CHUNKS = 30;

type CursorRow = { via: string; mailbox: string; chunks: number; [chunk: `cursor${number}`]: string };

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
    const json = Array.from({ length: row.chunks }, (_, i) => row[`cursor${i}`] ?? '').join('');
    return { cursor: JSON.parse(json) as ReaderCursor, etag: row.etag };
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
