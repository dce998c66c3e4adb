import { Readable } from 'node:stream';
import { STATE_NAMES, stateError, statusOf, type StorageAccount } from './storage.js';

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

/**
 * Container `mail-retained`: a copy of each delivered message, as the sink got it, for redelivery
 * on demand (POST /api/profiles/{name}/redeliver), kept `receive.retainDays` (default 7; infra/
 * deletes older blobs with a lifecycle rule, and redelivery skips them). One blob per message,
 * `<profile>/<id>.json`, so a message delivered again (after a crash) overwrites its own copy.
 */
export class RetainedStore extends BlobStore {
  constructor(account: StorageAccount) {
    super(account, STATE_NAMES.retained);
  }

  async put(message: RetainedMessage, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    await this.putText(retainedName(message.profile, message.id), JSON.stringify(message), 'application/json', options);
  }

  /** The copy of one delivered message, or undefined when none is kept (never delivered, or past retention). */
  async get<T extends RetainedMessage>(profile: string, id: string, options: { abortSignal?: AbortSignal; notBefore?: Date } = {}): Promise<T | undefined> {
    const container = await this.account.container(this.containerName);
    try {
      const blob = container.getBlockBlobClient(retainedName(profile, id));
      const properties = await blob.getProperties({ abortSignal: options.abortSignal });
      if (options.notBefore && properties.lastModified && properties.lastModified < options.notBefore) return undefined;
      return JSON.parse((await blob.downloadToBuffer(0, undefined, { abortSignal: options.abortSignal })).toString('utf8')) as T;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw stateError(error, `could not read the retained copy of ${profile}/${id}`);
    }
  }

  /** The ids of the copies kept for a profile whose delivery falls in [from, to), oldest first, at most `limit` (and whether there were more). */
  async delivered(profile: string, range: { from: Date; to: Date; limit: number }, options: { abortSignal?: AbortSignal } = {}): Promise<{ ids: string[]; more: boolean }> {
    const container = await this.account.container(this.containerName);
    const found: Array<{ id: string; at: number }> = [];
    try {
      for await (const blob of container.listBlobsFlat({ prefix: `${profile}/`, abortSignal: options.abortSignal })) {
        const at = blob.properties.lastModified?.getTime() ?? 0;
        if (at >= range.from.getTime() && at < range.to.getTime()) found.push({ id: decodeURIComponent(blob.name.slice(profile.length + 1, -'.json'.length)), at });
      }
    } catch (error) {
      throw stateError(error, `could not list the retained copies of ${profile}`);
    }
    found.sort((a, b) => a.at - b.at);
    return { ids: found.slice(0, range.limit).map((f) => f.id), more: found.length > range.limit };
  }
}

/** What the state needs of a delivered message (shared/mail's DeliveredMessage): whose, and its stable id. */
export interface RetainedMessage {
  profile: string;
  id: string;
}

function retainedName(profile: string, id: string): string {
  return `${profile}/${encodeURIComponent(id)}.json`;
}
