import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FileReader } from '../../shared/transports/file/fileReader.js';
import { FileSender } from '../../shared/transports/file/fileSender.js';
import { describeMailboxReader, type ReaderFixture } from '../contract/mailboxReader.js';
import { describeMailSender, type SenderFixture } from '../contract/mailSender.js';
import { mailFromMime } from '../contract/receivedMail.js';

/** The .eml files in a folder, oldest first (modification time, then name, as the reader orders them); undefined when there is no such folder. */
async function emlFiles(folder: string): Promise<Buffer[] | undefined> {
  const names = await readdir(folder).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (names === undefined) return undefined;
  const files = await Promise.all(names.filter((n) => n.endsWith('.eml')).map(async (name) => ({ name, mtimeMs: (await stat(path.join(folder, name))).mtimeMs })));
  files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Promise.all(files.map((f) => readFile(path.join(folder, f.name))));
}

interface FileFixture extends ReaderFixture {
  dir: string;
}

describeMailboxReader('file (a folder of .eml files)', () => ({
  start: async () => {},
  stop: async () => {},
  async mailbox(): Promise<FileFixture> {
    const dir = await mkdtemp(path.join(tmpdir(), 'file-reader-'));
    const inbox = path.join(dir, 'inbox');
    await mkdir(inbox);
    let count = 0;
    return {
      dir,
      reader: new FileReader({ folder: inbox }),
      async add(raw, { receivedAt }) {
        const name = `message-${String(++count).padStart(4, '0')}.eml`;
        const file = path.join(inbox, name);
        await writeFile(file, raw);
        await utimes(file, receivedAt, receivedAt);
        return name;
      },
      held: async () => ((await emlFiles(inbox)) ?? []).map((raw) => ({ raw })),
      authentications: () => [],
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
  reports: { size: true, receivedAt: true, seen: false },
  perMessageCursor: true,
  foreignCursor: { uidValidity: 7, lastUid: 3 },
  afterFetch: { markRead: false, delete: true, move: { target: (f) => path.join(f.dir, 'processed'), movedTo: (_f, target) => emlFiles(target) } },
}));

describeMailSender('file (an outbox folder of .eml files)', () => ({
  start: async () => {},
  stop: async () => {},
  mailbox: 'support@contoso.com',
  async fixture(): Promise<SenderFixture> {
    const dir = await mkdtemp(path.join(tmpdir(), 'file-sender-'));
    return {
      sender: new FileSender(dir),
      received: async () => Promise.all(((await emlFiles(dir)) ?? []).map((raw) => mailFromMime(raw))),
      authentications: () => [],
      close: () => rm(dir, { recursive: true, force: true }),
    };
  },
  bodies: 'both',
  hidesBcc: false,
}));
