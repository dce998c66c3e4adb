import type { Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline, Readable, Transform } from 'node:stream';
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
  private spill?: { dir: string; file: string; stream: WriteStream };

  constructor(
    private readonly hash: Hash,
    private readonly options: { memoryBytes: number },
  ) {}

  /** The source, passed on unchanged, and copied. */
  tap(source: NodeJS.ReadableStream): NodeJS.ReadableStream {
    const copy = new Transform({
      transform: (chunk: Buffer, _encoding, done) => {
        this.keep(chunk).then(() => done(null, chunk), done);
      },
    });
    // Either end failing ends both: an abandoned parse must not leave the provider's stream open.
    return pipeline(source, copy, () => {});
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
      this.spill = { dir, file, stream: createWriteStream(file) };
      for (const kept of this.chunks.splice(0)) this.spill.stream.write(kept);
    }
    if (!this.spill.stream.write(chunk)) await new Promise<void>((resolve) => this.spill!.stream.once('drain', () => resolve()));
  }

  /** The hex digest of everything that passed: read it once, after the source ended. */
  digest(): string {
    return this.hash.digest('hex');
  }

  /** The whole source again, from the copy. */
  async open(): Promise<NodeJS.ReadableStream> {
    if (!this.spill) return Readable.from(this.chunks);
    this.spill.stream.end();
    await finished(this.spill.stream);
    return createReadStream(this.spill.file);
  }

  async dispose(): Promise<void> {
    this.chunks.length = 0;
    const spill = this.spill;
    this.spill = undefined;
    if (!spill) return;
    spill.stream.destroy();
    await rm(spill.dir, { recursive: true, force: true });
  }
}
