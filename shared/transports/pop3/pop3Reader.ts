import { z } from 'zod';
import { exchangeScope } from '../../config/cloud.js';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { proxyMailError } from '../../network/proxyErrors.js';
import { openTunnel } from '../../network/tunnel.js';
import type { AcknowledgeOptions, AfterFetch, FetchedMessage, MailboxReader, MailboxSession, ReaderCursor, TransportDeps } from '../types.js';
import { translatedSource } from '../sourceStream.js';
import { Pop3Client } from './pop3Client.js';
import { translatePop3Error } from './pop3Errors.js';

const pop3CursorSchema = z.object({ seen: z.array(z.string()) });
export type Pop3Cursor = z.infer<typeof pop3CursorSchema>;

/**
 * Reads a mailbox's inbox over POP3 with XOAUTH2 (Exchange Online: TLS on 995). POP3 knows
 * no folders and no flags: the only afterFetch it can do is delete (DELE, applied at QUIT);
 * the profile schema refuses a POP3 profile with another folder, markRead or move.
 *
 * `open` does not retry a refused token itself: callers wrap it in `withAuthRetry`.
 */
export class Pop3Reader implements MailboxReader {
  readonly via = 'pop3' as const;

  constructor(
    private readonly profile: Profile,
    private readonly deps: TransportDeps,
  ) {}

  async open(options: { abortSignal?: AbortSignal } = {}): Promise<MailboxSession> {
    const token = await this.deps.tokens.getToken(exchangeScope(this.profile.endpoints), { abortSignal: options.abortSignal });
    const { host, port } = this.profile.endpoints.pop3;
    let step = 'connect';
    let client: Pop3Client | undefined;
    const proxy = await this.deps.proxy?.route(this.profile.endpoints.pop3);
    try {
      client = await Pop3Client.connect({
        host,
        port,
        abortSignal: options.abortSignal,
        // Our own POP3 client has no proxy option: node:http's CONNECT opens the tunnel, TLS runs inside it.
        ...(proxy !== undefined && { tunnel: () => openTunnel(proxy, { host, port }, { abortSignal: options.abortSignal }) }),
      });
      step = 'capabilities';
      const sasl = (await client.capabilities()).find((c) => /^SASL\b/i.test(c)) ?? '';
      if (!/\bXOAUTH2\b/i.test(sasl)) {
        throw new MailError('EAUTH', `profile "${this.profile.name}": the POP3 server at ${host}:${port} does not offer SASL XOAUTH2 (CAPA says "${sasl || 'no SASL'}")`, {
          profile: this.profile.name,
          hint: 'Point endpoints.pop3 at an Exchange Online POP3 endpoint (port 995), which offers XOAUTH2.',
        });
      }
      step = 'login';
      await client.authenticateXoauth2(this.profile.mailbox, token);
    } catch (error) {
      client?.close();
      throw proxyMailError(error, { server: proxy?.server, target: this.profile.endpoints.pop3, profile: this.profile.name }) ?? translatePop3Error(this.profile, error, step);
    }
    return new Pop3Session(this.profile, client, this.deps.logger);
  }
}

interface Listed {
  number: number;
  uid: string;
}

class Pop3Session implements MailboxSession {
  private wasResynced = false;
  private last?: () => Pop3Cursor;
  /** The cursor after each message listed in this session, worked out when it is acknowledged. */
  private readonly cursors = new Map<string, () => Pop3Cursor>();
  private readonly numbers = new Map<string, number>();
  /** UIDLs marked with DELE in this session: gone only once QUIT commits them. */
  private readonly deleted = new Set<string>();

  constructor(
    private readonly profile: Profile,
    private readonly client: Pop3Client,
    private readonly logger: Logger,
  ) {}

  get resynced(): boolean {
    return this.wasResynced;
  }

  async *messages(cursor: ReaderCursor | undefined, options: { limit: number; abortSignal?: AbortSignal }): AsyncIterable<FetchedMessage> {
    const parsed = cursor === undefined ? undefined : pop3CursorSchema.safeParse(cursor);
    this.wasResynced = parsed !== undefined && !parsed.success;
    const previous = parsed?.success ? parsed.data.seen : [];

    const listed: Listed[] = await this.run('UIDL', () => this.client.uidl());
    const sizes = await this.run('LIST', () => this.client.list());
    const onServer = new Set(listed.map((m) => m.uid));
    // A message no longer on the server does not come back, and RFC 1939 asks servers not to
    // reuse a UIDL while its message exists: the cursor keeps only UIDLs still listed, so it
    // stays as small as the mailbox.
    const kept = previous.filter((uid) => onServer.has(uid));
    const known = new Set(kept);
    // Message numbers follow arrival order, so the new ones come oldest first.
    const fresh = listed.filter((m) => !known.has(m.uid)).sort((a, b) => a.number - b.number).slice(0, options.limit);
    const seen = [...kept];
    // A message marked for deletion is left out of the cursor: should QUIT never commit its DELE,
    // the next poll meets it again (a duplicate by then, whose afterFetch deletes it again)
    // instead of it staying on the server, remembered as seen, for good. So a cursor is worked
    // out when the message is acknowledged, after its afterFetch.
    const through = (count: number): Pop3Cursor => ({ seen: seen.slice(0, count).filter((uid) => !this.deleted.has(uid)) });
    this.last = () => through(kept.length);
    for (const m of fresh) {
      options.abortSignal?.throwIfAborted();
      this.numbers.set(m.uid, m.number);
      seen.push(m.uid);
      const count = seen.length;
      this.last = () => through(count);
      this.cursors.set(m.uid, this.last);
      yield {
        providerId: m.uid,
        size: sizes.get(m.number),
        openSource: (o) => this.openSource(m.number, o?.abortSignal),
      };
    }
  }

  /** RETR as a stream; aborting it drops the rest of the message, and the client drains it so the session stays in step. */
  private async openSource(messageNumber: number, abortSignal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    abortSignal?.throwIfAborted();
    const content = await this.run('RETR', () => this.client.retrieve(messageNumber));
    return translatedSource(content, (error) => translatePop3Error(this.profile, error, 'RETR'), { abortSignal });
  }

  finalCursor(): ReaderCursor | undefined {
    return this.last?.();
  }

  async acknowledge(message: FetchedMessage, options: AcknowledgeOptions): Promise<ReaderCursor | undefined> {
    await this.applyAfterFetch(message, options.afterFetch);
    return this.cursors.get(message.providerId)?.();
  }

  private async applyAfterFetch(message: FetchedMessage, action: AfterFetch): Promise<void> {
    if (action === 'none') return;
    if (action !== 'delete') {
      throw new MailError('ECONFIG', `profile "${this.profile.name}": POP3 cannot ${action === 'markRead' ? 'mark messages read' : 'move messages'}`, {
        profile: this.profile.name,
        field: 'receive.afterFetch',
        hint: 'With receive.via "pop3" use afterFetch "delete" or "none" (or read over IMAP or Graph).',
      });
    }
    const number = this.numbers.get(message.providerId);
    if (number === undefined) {
      throw new MailError('EMAILBOX', `profile "${this.profile.name}": message ${message.providerId} was not listed in this POP3 session`, { profile: this.profile.name });
    }
    await this.run('DELE', () => this.client.delete(number));
    this.deleted.add(message.providerId);
  }

  /** QUIT applies the DELEs; if it fails they are not applied (the next poll deletes them again), and the caller hears of it. */
  async close(): Promise<void> {
    try {
      await this.client.quit();
    } catch (error) {
      const failure = translatePop3Error(this.profile, error, 'QUIT');
      if (this.deleted.size > 0) throw failure;
      this.logger.warn({ operation: 'pop3', profile: this.profile.name, outcome: 'error', code: failure.code, message: failure.message });
    } finally {
      this.client.close();
    }
  }

  private async run<T>(operation: string, command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      throw translatePop3Error(this.profile, error, operation);
    }
  }
}
