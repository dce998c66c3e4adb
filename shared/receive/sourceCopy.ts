import type { Hash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished } from 'node:stream/promises';

/**
 * What a message's source is kept as while it is parsed, so that an unparseable one is read from
 * the mailbox once (an IMAP download, a POP3 RETR, a Graph $value), not again for its id and
 * again for its dead-letter: the raw bytes pass through `tap` on their way to the parser, are
 * hashed, and kept in memory up to `memoryBytes`, past that in a temporary file. A parsed message
 * discards the copy.
 */
export class SourceCopy {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;
  private spill?: { dir: string; file: string; stream: WriteStream; error?: Error };

  constructor(
    private readonly hash: Hash,
    private readonly options: { memoryBytes: number },
  ) {}

  private source?: NodeJS.ReadableStream;
  private reading: Promise<void> = Promise.resolve();

  /**
   * The source, passed on unchanged, and copied. The copy reads the source to its end even when
   * the parser stops early (mailparser gives up on a header section over its limit, with most of
   * the message unread): an unparseable message is dead-lettered whole, and its id is the hash of
   * all its bytes. A source that fails fails the stream the parser reads; dispose() ends the
   * reading and destroys the provider's stream, so an abandoned parse leaves nothing open.
   */
  tap(source: NodeJS.ReadableStream): NodeJS.ReadableStream {
    const out = new PassThrough();
    this.source = source;
    this.reading = (async () => {
      for await (const chunk of source) {
        await this.keep(chunk as Buffer);
        if (!out.destroyed && !out.write(chunk)) await drainedOrClosed(out);
      }
      out.end();
    })();
    this.reading.catch((error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))));
    return out;
  }

  /** Resolves once the source was read to its end (rejects with its failure): before digest() of a message the parser refused. */
  complete(): Promise<void> {
    return this.reading;
  }

  private async keep(chunk: Buffer): Promise<void> {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (!this.spill && this.bytes <= this.options.memoryBytes) {
      this.chunks.push(chunk);
      return;
    }
    if (!this.spill) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'm365-mail-source-'));
      const file = path.join(dir, 'source.eml');
      const spill: NonNullable<SourceCopy['spill']> = { dir, file, stream: createWriteStream(file) };
      // Without a listener a failed write (a full disk, or a write still in flight when dispose
      // destroys the stream) is an uncaught 'error' that ends the process. Kept, it fails this
      // message's read (a source error: the message comes again) or, once disposed, nothing.
      spill.stream.on('error', (error) => {
        spill.error ??= error;
      });
      this.spill = spill;
      for (const kept of this.chunks.splice(0)) spill.stream.write(kept);
    }
    const spill = this.spill;
    if (spill.error) throw spill.error;
    // events.once rejects when 'error' comes first.
    if (!spill.stream.write(chunk)) await once(spill.stream, 'drain');
  }

  /** The hex digest of everything that passed: read it once, after the source ended. */
  digest(): string {
    return this.hash.digest('hex');
  }

  /** The whole source again, from the copy. */
  async open(): Promise<NodeJS.ReadableStream> {
    await this.reading;
    if (!this.spill) return Readable.from(this.chunks);
    this.spill.stream.end();
    await finished(this.spill.stream);
    return createReadStream(this.spill.file);
  }

  async dispose(): Promise<void> {
    (this.source as Partial<Readable> | undefined)?.destroy?.();
    await this.reading.catch(() => {});
    this.chunks.length = 0;
    const spill = this.spill;
    this.spill = undefined;
    if (!spill) return;
    spill.stream.destroy();
    await rm(spill.dir, { recursive: true, force: true });
  }
}

/** Until `stream` can take more, or is gone (the parser stopped reading: the copy goes on without it). */
function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}
