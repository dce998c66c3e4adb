import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { MailError } from '../../errors.js';
import type { AcknowledgeOptions, AfterFetch, FetchedMessage, MailboxReader, MailboxSession, ReaderCursor } from '../types.js';

const fileCursorSchema = z.object({ seen: z.array(z.string()) });

export interface FileReaderOptions {
  /** The folder `.eml` files are dropped into. */
  folder: string;
  /** Where afterFetch "move" puts them. */
  moveTo?: string;
}

/**
 * Reads `.eml` files from a folder, oldest first (modification time, then name). Backs the
 * built-in `local` profile, so a poll runs the same path as in production with no mail server.
 * The cursor remembers the names already handled among those still in the folder.
 */
export class FileReader implements MailboxReader {
  readonly via = 'file' as const;

  constructor(private readonly options: FileReaderOptions) {}

  async open(): Promise<MailboxSession> {
    await mkdir(this.options.folder, { recursive: true });
    return new FileSession(this.options);
  }
}

class FileSession implements MailboxSession {
  /** A cursor that is not a file cursor (another transport's, or damaged) is discarded, and says so. */
  resynced = false;
  private last?: ReaderCursor;
  /** The cursor after each message listed in this session, answered when it is acknowledged. */
  private readonly cursors = new Map<string, ReaderCursor>();

  constructor(private readonly options: FileReaderOptions) {}

  async *messages(cursor: ReaderCursor | undefined, options: { limit: number; abortSignal?: AbortSignal }): AsyncIterable<FetchedMessage> {
    const parsed = cursor === undefined ? undefined : fileCursorSchema.safeParse(cursor);
    this.resynced = parsed !== undefined && !parsed.success;
    const entries = await this.list();
    const present = new Set(entries.map((e) => e.name));
    // Names no longer in the folder were moved or deleted: forgetting them keeps the cursor small.
    const seen = (parsed?.success ? parsed.data.seen : []).filter((name) => present.has(name));
    this.last = { seen: [...seen] };
    const done = new Set(seen);
    let yielded = 0;
    for (const entry of entries) {
      if (yielded >= options.limit) break;
      options.abortSignal?.throwIfAborted();
      if (done.has(entry.name)) continue;
      seen.push(entry.name);
      const cursorAfter = { seen: [...seen] };
      this.last = cursorAfter;
      this.cursors.set(entry.name, cursorAfter);
      yielded++;
      const file = path.join(this.options.folder, entry.name);
      yield {
        providerId: entry.name,
        receivedAt: new Date(entry.mtimeMs),
        size: entry.size,
        openSource: async () => createReadStream(file),
      };
    }
  }

  finalCursor(): ReaderCursor | undefined {
    return this.last;
  }

  async acknowledge(message: FetchedMessage, options: AcknowledgeOptions): Promise<ReaderCursor | undefined> {
    await this.applyAfterFetch(message, options.afterFetch, options);
    return this.cursors.get(message.providerId);
  }

  /** Files have no read flag: markRead leaves them as they are. */
  private async applyAfterFetch(message: FetchedMessage, action: AfterFetch, options: { moveTo?: string }): Promise<void> {
    const file = path.join(this.options.folder, message.providerId);
    switch (action) {
      case 'none':
      case 'markRead':
        return;
      case 'delete':
        return unlink(file);
      case 'move': {
        const target = options.moveTo ?? this.options.moveTo;
        if (target === undefined) {
          throw new MailError('ECONFIG', 'afterFetch "move" needs receive.moveTo', { field: 'receive.moveTo', hint: 'Name the folder processed messages are moved to.' });
        }
        await mkdir(target, { recursive: true });
        return rename(file, await freeName(target, message.providerId));
      }
    }
  }

  async close(): Promise<void> {}

  private async list(): Promise<{ name: string; mtimeMs: number; size: number }[]> {
    const names = (await readdir(this.options.folder)).filter((name) => name.toLowerCase().endsWith('.eml'));
    const entries = await Promise.all(
      names.map(async (name) => {
        const info = await stat(path.join(this.options.folder, name));
        return info.isFile() ? { name, mtimeMs: info.mtimeMs, size: info.size } : undefined;
      }),
    );
    return entries
      .filter((e): e is { name: string; mtimeMs: number; size: number } => e !== undefined)
      .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

/** `name`, or `name-1`, `name-2`... : a moved file never overwrites one moved earlier. */
async function freeName(folder: string, name: string): Promise<string> {
  const { name: stem, ext } = path.parse(name);
  for (let n = 0; ; n++) {
    const candidate = path.join(folder, n === 0 ? name : `${stem}-${n}${ext}`);
    const taken = await access(candidate).then(() => true, () => false);
    if (!taken) return candidate;
  }
}
