import { Readable } from 'node:stream';
import type { ImapFlow, Logger as ImapFlowLogger, SearchObject } from 'imapflow';
import { z } from 'zod';
import { exchangeScope } from '../../config/cloud.js';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { proxyUrlWithCredentials } from '../../network/proxy.js';
import { proxyMailError } from '../../network/proxyErrors.js';
import type { Acknowledged, Acknowledgement, AcknowledgeOptions, AfterFetch, FetchedMessage, MailboxReader, MailboxSession, ReaderCursor, TransportDeps } from '../types.js';
import { translatedSource } from '../sourceStream.js';
import { translateImapError } from './imapErrors.js';

/** UIDVALIDITY is a 32-bit number (RFC 3501 2.3.1.1), so it fits a JSON number; imapflow hands it over as a bigint. */
const imapCursorSchema = z.object({ uidValidity: z.number().int().positive(), lastUid: z.number().int().nonnegative() });
export type ImapCursor = z.infer<typeof imapCursorSchema>;

/** Exchange, like RFC 3501, names the inbox INBOX; profiles say "Inbox" as Outlook shows it. */
export function imapFolderName(folder: string): string {
  return folder.toUpperCase() === 'INBOX' ? 'INBOX' : folder;
}

/**
 * Messages up to this size are fetched whole, many per UID FETCH: one command round trip per
 * message was what bounded ingest over IMAP (bench/poll). Larger ones are streamed one by one.
 */
const BULK_MESSAGE_MAX_BYTES = 1024 * 1024;
/**
 * Partial fetch size for a streamed message. imapflow's default of 64 KB makes a 50 MB attachment
 * over a thousand round trips; at 256 KB bench/poll polls it about a fifth faster for some 12 MB
 * more peak RSS (1 MB chunks were slower again and cost twice that).
 */
const DOWNLOAD_CHUNK_BYTES = 256 * 1024;
/** What one bulk UID FETCH may bring into memory at once. */
const BULK_BATCH_MAX_BYTES = 8 * 1024 * 1024;
/** Keeps the first delivery early in a large backlog: a few round trips per thousand messages. */
const BULK_BATCH_MAX_MESSAGES = 250;

/**
 * Consecutive small messages grouped within the bulk limits; each large message (or one whose
 * size the server did not give) alone and streamed. The order stays the mailbox's.
 */
function sourceBatches<T extends { size?: number }>(messages: readonly T[]): Array<{ bulk: boolean; messages: T[] }> {
  const batches: Array<{ bulk: boolean; messages: T[]; bytes: number }> = [];
  for (const m of messages) {
    const size = m.size ?? Infinity;
    const small = size <= BULK_MESSAGE_MAX_BYTES;
    const open = batches.at(-1);
    if (small && open?.bulk && open.bytes + size <= BULK_BATCH_MAX_BYTES && open.messages.length < BULK_BATCH_MAX_MESSAGES) {
      open.messages.push(m);
      open.bytes += size;
    } else {
      batches.push({ bulk: small, messages: [m], bytes: size });
    }
  }
  return batches.map(({ bulk, messages: batch }) => ({ bulk, messages: batch }));
}

/** Ascending UIDs as a compact sequence set (`1:3,7,9:10`, RFC 3501 9): a backlog is mostly consecutive. */
function uidSet(uids: readonly number[]): string {
  const ranges: string[] = [];
  for (let i = 0; i < uids.length; ) {
    let j = i;
    while (j + 1 < uids.length && uids[j + 1] === uids[j]! + 1) j++;
    ranges.push(i === j ? String(uids[i]) : `${uids[i]}:${uids[j]}`);
    i = j + 1;
  }
  return ranges.join(',');
}

/**
 * Reads one mailbox folder over IMAP with XOAUTH2 (imapflow). Each session is its own
 * connection with a fresh token: an ImapFlow instance cannot reconnect once closed, a token
 * may expire between polls, and the next poll may run on another instance anyway.
 *
 * `open` does not retry a refused token itself: callers wrap it in `withAuthRetry`, as
 * `sendMail` does for senders, so that a rotated secret is re-read exactly once.
 */
export class ImapReader implements MailboxReader {
  readonly via = 'imap' as const;

  constructor(
    private readonly profile: Profile,
    private readonly deps: TransportDeps,
  ) {}

  async open(options: { abortSignal?: AbortSignal } = {}): Promise<MailboxSession> {
    const { client, log, release } = await connectImap(this.profile, this.deps, { folder: imapFolderName(this.profile.receive?.folder ?? 'INBOX'), abortSignal: options.abortSignal });
    return new ImapSession(this.profile, client, log, release);
  }
}

export interface ImapConnection {
  client: ImapFlow;
  log: ImapLog;
  /** Stops the abort signal from closing the client; the caller closes it. */
  release(): void;
}

/**
 * One IMAP connection to the profile's mailbox with a fresh token, logged in and, with
 * `folder`, that folder selected (a function of its own for `folder: (client) => name`, which
 * picks it once logged in). The abort signal closes it; failures are MailErrors.
 */
export async function connectImap(profile: Profile, deps: TransportDeps, options: { folder: string | ((client: ImapFlow) => Promise<string>); abortSignal?: AbortSignal }): Promise<ImapConnection> {
  const token = await deps.tokens.getToken(exchangeScope(profile.endpoints), { abortSignal: options.abortSignal });
  const { ImapFlow } = require('imapflow') as typeof import('imapflow');
  const { host, port } = profile.endpoints.imap;
  const proxy = await deps.proxy?.route(profile.endpoints.imap);
  const log = new ImapLog(deps.logger, profile.name);
  const client = new ImapFlow({
    host,
    port,
    secure: true,
    // imapflow's own HTTP CONNECT (its `proxy` option); TLS runs inside the tunnel.
    ...(proxy !== undefined && { proxy: proxyUrlWithCredentials(proxy) }),
    // Office 365 offers AUTH=XOAUTH2 and never OAUTHBEARER, so with an access token imapflow
    // authenticates with XOAUTH2 there; no password is ever given, so no LOGIN fallback exists.
    auth: { user: profile.mailbox, accessToken: token },
    logger: log,
    disableAutoIdle: true,
    connectionTimeout: 30_000,
    greetingTimeout: 15_000,
  });
  // imapflow also reports a failing connection as an 'error' event, which would crash the
  // process without a listener; the pending command rejects with the same error.
  client.on('error', (error: unknown) => log.warn({ msg: 'connection error', err: error }));
  const abort = () => client.close();
  options.abortSignal?.addEventListener('abort', abort, { once: true });
  let step = 'login';
  try {
    await client.connect();
    step = 'select';
    await client.mailboxOpen(typeof options.folder === 'string' ? options.folder : await options.folder(client));
  } catch (error) {
    client.close();
    options.abortSignal?.removeEventListener('abort', abort);
    throw proxyMailError(error, { server: proxy?.server, target: profile.endpoints.imap, profile: profile.name }) ?? translateImapError(profile, error, step);
  }
  return { client, log, release: () => options.abortSignal?.removeEventListener('abort', abort) };
}

class ImapSession implements MailboxSession {
  private wasResynced = false;
  private last?: ImapCursor;
  /** The cursor after each message listed in this session, answered when it is acknowledged. */
  private readonly cursors = new Map<string, ImapCursor>();
  private readonly createdFolders = new Set<string>();

  constructor(
    private readonly profile: Profile,
    private readonly client: ImapFlow,
    private readonly log: ImapLog,
    private readonly onClose: () => void,
  ) {}

  get resynced(): boolean {
    return this.wasResynced;
  }

  private get uidValidity(): number {
    const mailbox = this.client.mailbox;
    if (!mailbox) throw new MailError('EPROVIDER', `profile "${this.profile.name}": the IMAP folder is no longer selected`, { profile: this.profile.name });
    return Number(mailbox.uidValidity);
  }

  async *messages(cursor: ReaderCursor | undefined, options: { limit: number; abortSignal?: AbortSignal }): AsyncIterable<FetchedMessage> {
    const uidValidity = this.uidValidity;
    const parsed = cursor === undefined ? undefined : imapCursorSchema.safeParse(cursor);
    const honoured = parsed?.success && parsed.data.uidValidity === uidValidity ? parsed.data : undefined;
    // A cursor from another UIDVALIDITY (or another transport) names UIDs that mean nothing now.
    this.wasResynced = cursor !== undefined && honoured === undefined;
    const lastUid = honoured?.lastUid ?? 0;
    this.last = { uidValidity, lastUid };

    const query: SearchObject = { uid: `${lastUid + 1}:*` };
    // Cheap on the server and spares downloading what the filter would drop.
    if (this.profile.receive?.filters?.unreadOnly) query.seen = false;
    const found = await this.run('search', () => this.client.search(query, { uid: true }));
    // `N:*` always matches the highest UID, even one below N (RFC 3501 6.4.8): keep only new ones.
    const uids = (found || []).filter((uid) => uid > lastUid).sort((a, b) => a - b).slice(0, options.limit);
    if (uids.length === 0) return;

    const details = await this.run('fetch', () => this.client.fetchAll(uidSet(uids), { uid: true, flags: true, size: true, internalDate: true }, { uid: true }));
    const byUid = new Map(details.map((m) => [m.uid, m]));
    // Expunged between SEARCH and FETCH: nothing to deliver, and later UIDs move the cursor past it.
    const listed = uids.map((uid) => byUid.get(uid)).filter((m) => m !== undefined);
    for (const batch of sourceBatches(listed)) {
      options.abortSignal?.throwIfAborted();
      const sources = batch.bulk ? await this.fetchSources(batch.messages.map((m) => m.uid)) : new Map<number, Buffer>();
      for (const m of batch.messages) {
        options.abortSignal?.throwIfAborted();
        const uid = m.uid;
        const source = sources.get(uid);
        const cursorAfter: ImapCursor = { uidValidity, lastUid: uid };
        this.last = cursorAfter;
        this.cursors.set(`${uidValidity}:${uid}`, cursorAfter);
        yield {
          providerId: `${uidValidity}:${uid}`,
          receivedAt: m.internalDate === undefined ? undefined : new Date(m.internalDate),
          size: m.size,
          seen: m.flags?.has('\\Seen') ?? false,
          // A source not in the bulk answer (expunged meanwhile) goes the single-message way, which says so.
          openSource: async (o) => (source ? Readable.from([source], { objectMode: false }) : this.openSource(uid, o?.abortSignal)),
        };
      }
    }
  }

  /** Whole sources of small messages in one UID FETCH of BODY.PEEK[], so reading never sets \Seen. */
  private async fetchSources(uids: readonly number[]): Promise<Map<number, Buffer>> {
    const fetched = await this.run('fetch', () => this.client.fetchAll(uidSet(uids), { uid: true, source: true }, { uid: true }));
    const sources = new Map<number, Buffer>();
    for (const m of fetched) if (m.source) sources.set(m.uid, m.source);
    return sources;
  }

  finalCursor(): ReaderCursor | undefined {
    return this.last;
  }

  /** A large message's source in partial fetches of BODY.PEEK[] (imapflow's download), streamed, never held whole. */
  private async openSource(uid: number, abortSignal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    const { content } = await this.run('download', () => this.client.download(String(uid), undefined, { uid: true, chunkSize: DOWNLOAD_CHUNK_BYTES }));
    if (!content) {
      throw new MailError('EMAILBOX', `profile "${this.profile.name}": message UID ${uid} is no longer in the folder`, {
        profile: this.profile.name,
        hint: 'Another client moved or deleted it after this poll listed it; the next poll carries on.',
      });
    }
    return translatedSource(content, (error) => translateImapError(this.profile, error, 'download'), { abortSignal });
  }

  async acknowledge(message: FetchedMessage, options: AcknowledgeOptions): Promise<ReaderCursor | undefined> {
    if (options.afterFetch !== 'none') await this.applyAfterFetch(options.afterFetch, String(this.uidOf(message)), options.moveTo ?? this.profile.receive?.moveTo);
    return this.cursors.get(message.providerId);
  }

  /**
   * A window's afterFetch in one command per action over a UID set (UID STORE, UID MOVE, UID STORE
   * and UID EXPUNGE) instead of a round trip per message. A command the server refuses fails every
   * message it named, so the cursor stops before the first of them, as it would one at a time.
   */
  async acknowledgeAll(acknowledgements: readonly Acknowledgement[], options: { abortSignal?: AbortSignal }): Promise<Acknowledged[]> {
    const answers: Acknowledged[] = acknowledgements.map(({ message }) => ({ ok: true, cursor: this.cursors.get(message.providerId) }));
    const groups = new Map<string, { action: Exclude<AfterFetch, 'none'>; moveTo?: string; indices: number[]; uids: number[] }>();
    for (const [index, { message, afterFetch, moveTo }] of acknowledgements.entries()) {
      if (afterFetch === 'none') continue;
      let uid: number;
      try {
        uid = this.uidOf(message);
      } catch (error) {
        answers[index] = { ok: false, error };
        continue;
      }
      const target = afterFetch === 'move' ? (moveTo ?? this.profile.receive?.moveTo) : undefined;
      const key = `${afterFetch} ${target ?? ''}`;
      const group = groups.get(key) ?? { action: afterFetch, ...(target !== undefined && { moveTo: target }), indices: [], uids: [] };
      group.indices.push(index);
      group.uids.push(uid);
      groups.set(key, group);
    }
    for (const group of groups.values()) {
      try {
        options.abortSignal?.throwIfAborted();
        await this.applyAfterFetch(group.action, uidSet([...group.uids].sort((a, b) => a - b)), group.moveTo);
      } catch (error) {
        for (const index of group.indices) answers[index] = { ok: false, error };
      }
    }
    return answers;
  }

  /** afterFetch on the messages of a UID set (one UID, or a window's). */
  private async applyAfterFetch(action: Exclude<AfterFetch, 'none'>, range: string, moveTo: string | undefined): Promise<void> {
    switch (action) {
      case 'markRead':
        return this.expect('markRead', await this.run('markRead', () => this.client.messageFlagsAdd(range, ['\\Seen'], { uid: true })));
      case 'delete':
        // STORE +FLAGS \Deleted, then UID EXPUNGE of these messages alone where UIDPLUS is offered (Exchange does).
        return this.expect('delete', await this.run('delete', () => this.client.messageDelete(range, { uid: true })));
      case 'move':
        return this.move(range, moveTo);
    }
  }

  /**
   * Moves the messages of a UID set. A missing target folder is created once and the move repeated: the
   * alternative, failing every poll after delivery, would leave the inbox full of messages
   * that were delivered and never moved.
   */
  private async move(range: string, moveTo: string | undefined): Promise<void> {
    if (!moveTo) {
      throw new MailError('ECONFIG', `profile "${this.profile.name}": afterFetch "move" needs receive.moveTo`, { profile: this.profile.name, field: 'receive.moveTo', hint: 'Name the folder to move fetched messages to.' });
    }
    const target = imapFolderName(moveTo);
    if (await this.run('move', () => this.client.messageMove(range, target, { uid: true }))) return;
    if (!this.createdFolders.has(target) && !(await this.folderExists(target))) {
      await this.run('create folder', () => this.client.mailboxCreate(target));
      this.createdFolders.add(target);
      this.log.note(`created folder ${target} for afterFetch "move"`);
      if (await this.run('move', () => this.client.messageMove(range, target, { uid: true }))) return;
    }
    this.expect('move', false);
  }

  private async folderExists(path: string): Promise<boolean> {
    const folders = await this.run('list', () => this.client.list());
    return folders.some((f) => f.path.toUpperCase() === path.toUpperCase());
  }

  private uidOf(message: FetchedMessage): number {
    const match = /^(\d+):(\d+)$/.exec(message.providerId);
    if (!match || Number(match[1]) !== this.uidValidity) {
      throw new MailError('EMAILBOX', `profile "${this.profile.name}": message ${message.providerId} is not from this folder's current UIDVALIDITY`, {
        profile: this.profile.name,
        hint: 'The folder was rebuilt since the message was listed; the next poll resynchronises.',
      });
    }
    return Number(match[2]);
  }

  /** imapflow answers a refused STORE/MOVE/EXPUNGE with `false` and logs the server's reply; that reply is the error. */
  private expect(operation: string, ok: unknown): void {
    if (ok) return;
    throw translateImapError(this.profile, this.log.takeCommandError() ?? new Error('the server refused the command'), operation);
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw translateImapError(this.profile, error, operation);
    }
  }

  async close(): Promise<void> {
    this.onClose();
    try {
      await this.client.logout();
    } catch (error) {
      // The session's work is done; a LOGOUT on a connection that already broke changes nothing.
      this.log.warn({ msg: 'logout failed', err: error });
    } finally {
      this.client.close();
    }
  }
}

/**
 * imapflow's logger, routed to ours: warnings and errors only (its debug and info levels
 * carry protocol traffic and per-connection chatter), as one structured event each,
 * through the redacting logger.
 * It also keeps the last command error imapflow reported, because for STORE, MOVE and
 * EXPUNGE that log line is the only place imapflow puts the server's answer.
 */
export class ImapLog implements ImapFlowLogger {
  private lastCommandError?: unknown;

  constructor(
    private readonly logger: Logger,
    private readonly profile: string,
  ) {}

  debug(): void {}

  info(): void {}

  /** Our own notes on what the session did to the mailbox. */
  note(message: string): void {
    this.logger.info({ operation: 'imap', profile: this.profile, outcome: 'ok', message });
  }

  warn(entry: { msg?: unknown; err?: unknown }): void {
    if (entry.err !== undefined) this.lastCommandError = entry.err;
    this.logger.warn({ operation: 'imap', profile: this.profile, outcome: 'error', ...describe(entry) });
  }

  error(entry: { msg?: unknown; err?: unknown }): void {
    this.logger.error({ operation: 'imap', profile: this.profile, outcome: 'error', ...describe(entry) });
  }

  takeCommandError(): unknown {
    const error = this.lastCommandError;
    this.lastCommandError = undefined;
    return error;
  }
}

function describe(entry: { msg?: unknown; err?: unknown }): { message: string; code?: string; response?: string } {
  const err = entry.err as { message?: unknown; code?: unknown; response?: unknown } | undefined;
  return {
    message: String(entry.msg ?? err?.message ?? ''),
    code: typeof err?.code === 'string' ? err.code : undefined,
    response: typeof err?.response === 'string' ? err.response : undefined,
  };
}
