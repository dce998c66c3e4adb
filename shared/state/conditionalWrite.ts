import type { TableClient, TableEntity } from '@azure/data-tables';
import type { MailError } from '../errors.js';
import { stateError, statusOf } from './storage.js';

/**
 * Writes a row on the condition its writer read it under: created when `etag` is undefined (no
 * row was there), else replaced only while it is still at `etag`. A lost race (409: created by
 * another meanwhile; 412: changed since) is the caller's `conflict`, anything else ESTATE.
 */
export async function writeRowIfUnchanged<T extends object>(
  table: Promise<TableClient>,
  entity: TableEntity<T>,
  etag: string | undefined,
  options: { abortSignal?: AbortSignal; what: string; conflict: (cause: unknown) => MailError },
): Promise<void> {
  try {
    const client = await table;
    if (etag === undefined) await client.createEntity(entity, { abortSignal: options.abortSignal });
    else await client.updateEntity(entity, 'Replace', { etag, abortSignal: options.abortSignal });
  } catch (error) {
    const status = statusOf(error);
    if (status === 409 || status === 412) throw options.conflict(error);
    throw stateError(error, `could not write ${options.what}`);
  }
}
