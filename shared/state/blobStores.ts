import { Readable } from 'node:stream';
import { STATE_NAMES, stateError, type StorageAccount } from './storage.js';

/** Where a blob lives: what a claim check or a dead-letter entry carries. */
export interface BlobRef {
  container: string;
  name: string;
}

/**
 * Block size and parallelism for streamed uploads: memory stays near blockBytes x
 * (concurrency + 1) however large the source, so a 50 MB attachment is never held whole.
 */
const STREAM_BLOCK_BYTES = 4 * 1024 * 1024;
const STREAM_CONCURRENCY = 2;

function asReadable(stream: NodeJS.ReadableStream): Readable {
  return stream instanceof Readable ? stream : new Readable().wrap(stream);
}

/** Blobs in one container: JSON documents and streamed sources. */
class BlobStore {
  constructor(protected readonly account: StorageAccount, readonly containerName: string) {}

  async putText(name: string, text: string, contentType: string, options: { abortSignal?: AbortSignal } = {}): Promise<BlobRef> {
    const container = await this.account.container(this.containerName);
    try {
      await container.getBlockBlobClient(name).upload(text, Buffer.byteLength(text), { blobHTTPHeaders: { blobContentType: contentType }, abortSignal: options.abortSignal });
    } catch (error) {
      throw stateError(error, `could not store blob ${this.containerName}/${name}`);
    }
    return { container: this.containerName, name };
  }

  async putStream(name: string, stream: NodeJS.ReadableStream, contentType: string, options: { abortSignal?: AbortSignal; metadata?: Record<string, string> } = {}): Promise<BlobRef> {
    const container = await this.account.container(this.containerName);
    const source = asReadable(stream);
    try {
      await container.getBlockBlobClient(name).uploadStream(source, STREAM_BLOCK_BYTES, STREAM_CONCURRENCY, {
        blobHTTPHeaders: { blobContentType: contentType },
        ...(options.metadata && { metadata: options.metadata }),
        abortSignal: options.abortSignal,
      });
    } catch (error) {
      source.destroy();
      throw stateError(error, `could not store blob ${this.containerName}/${name}`);
    }
    return { container: this.containerName, name };
  }
}

/** Container `mail-payloads`: queue messages over the queue limit (claim checks) and large attachments. */
export class PayloadStore extends BlobStore {
  constructor(account: StorageAccount) {
    super(account, STATE_NAMES.payloads);
  }

  /**
   * Stores a large attachment under a name derived from its message, once: a redelivery or a
   * resync that parses the message again finds the blob and reads its stream to the end
   * without uploading it again, so neither an orphan nor a changed blob under a reference a
   * consumer already holds. A committed block blob is whole (uploads commit at the end).
   *
   * Served as application/octet-stream whatever the sender called it (text/html or image/svg+xml
   * opened from a SAS URL would run in the storage account's origin); the sender's type is the
   * blob's `sendercontenttype` metadata, printable ASCII only, as metadata must be.
   */
  async putAttachment(name: string, stream: NodeJS.ReadableStream, described: { senderContentType: string }, options: { abortSignal?: AbortSignal } = {}): Promise<BlobRef> {
    const container = await this.account.container(this.containerName);
    let stored: boolean;
    try {
      stored = await container.getBlockBlobClient(name).exists({ abortSignal: options.abortSignal });
    } catch (error) {
      throw stateError(error, `could not look up blob ${this.containerName}/${name}`);
    }
    const senderContentType = described.senderContentType.replace(/[^\x20-\x7e]/g, '').slice(0, 255);
    if (!stored) return this.putStream(name, stream, 'application/octet-stream', { ...options, metadata: { sendercontenttype: senderContentType } });
    for await (const chunk of stream) void chunk;
    return { container: this.containerName, name };
  }
}

export interface DeadLetterEntry {
  profile: string;
  providerId: string;
  error: { code: string; message: string };
  /** The raw RFC 5322 source, streamed to `<name>.eml`. */
  source?: NodeJS.ReadableStream;
  /** The normalized message a sink refused, stored in the `.json` next to the error. */
  message?: unknown;
}

/**
 * Container `mail-deadletter`: what could not be parsed or was refused by the sink, with
 * its raw source and the error as JSON, for a person to look at. Never retried.
 */
export class DeadLetterStore extends BlobStore {
  constructor(account: StorageAccount) {
    super(account, STATE_NAMES.deadLetter);
  }

  async put(entry: DeadLetterEntry, options: { abortSignal?: AbortSignal } = {}): Promise<BlobRef> {
    const at = new Date();
    const safeId = entry.providerId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 200);
    const base = `${entry.profile}/${at.toISOString().slice(0, 10)}/${at.getTime()}-${safeId}`;
    let source: BlobRef | undefined;
    if (entry.source) source = await this.putStream(`${base}.eml`, entry.source, 'message/rfc822', options);
    const record = { profile: entry.profile, providerId: entry.providerId, deadLetteredAt: at.toISOString(), error: entry.error, source, message: entry.message };
    return this.putText(`${base}.json`, JSON.stringify(record, null, 2), 'application/json', options);
  }
}
