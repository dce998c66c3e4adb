import { downloadWhole, stateError, statusOf, type StorageAccount } from './storage.js';

/** The container queued messages wait in until they are sent or have failed for good. */
export const OUTBOX_CONTAINER = 'mail-outbox';

/**
 * Queued messages too large for their status row (sendStatusStore.ts fitsInStatusRow) as JSON
 * blobs `mail-outbox/<id>.json`: attachments make a message MBs large (a table property holds
 * 64 KiB, a queue message 64 KiB) and a blob holds it whole.
 */
export class OutboxStore {
  constructor(private readonly account: StorageAccount) {}

  async put(id: string, text: string, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const container = await this.account.container(OUTBOX_CONTAINER);
    try {
      await container.getBlockBlobClient(blobName(id)).upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: 'application/json' }, abortSignal: options.abortSignal });
    } catch (error) {
      throw stateError(error, `could not store queued message ${id}`);
    }
  }

  /** The stored JSON text, or undefined when there is none (sent or failed already, or never stored). */
  async get(id: string, options: { abortSignal?: AbortSignal } = {}): Promise<string | undefined> {
    const container = await this.account.container(OUTBOX_CONTAINER);
    let bytes: Buffer;
    try {
      bytes = await downloadWhole(container.getBlockBlobClient(blobName(id)), options);
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw stateError(error, `could not read queued message ${id}`);
    }
    return bytes.toString('utf8');
  }

  async remove(id: string, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const container = await this.account.container(OUTBOX_CONTAINER);
    try {
      await container.getBlockBlobClient(blobName(id)).deleteIfExists({ abortSignal: options.abortSignal });
    } catch (error) {
      throw stateError(error, `could not remove queued message ${id}`);
    }
  }
}

function blobName(id: string): string {
  return `${encodeURIComponent(id)}.json`;
}
