import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { z } from 'zod';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { AcknowledgeOptions, FetchedMessage, MailboxReader, MailboxSession, ReaderCursor, TransportDeps } from '../types.js';
import { graphConnection, type GraphConnection } from './graphClient.js';
import { translatedSource } from '../sourceStream.js';
import { isExpiredDeltaError, translateGraphError } from './graphErrors.js';

/**
 * The Graph cursor: the link the next poll resumes from. Normally the round's
 * `@odata.deltaLink`; an `@odata.nextLink` when a poll stopped at its limit mid-round (both
 * are Graph state tokens that carry the query, https://learn.microsoft.com/graph/delta-query-messages).
 */
const graphCursorSchema = z.object({ deltaLink: z.url() });
export type GraphCursor = z.infer<typeof graphCursorSchema>;

/** Graph's well-known folder names, usable in place of a folder id. https://learn.microsoft.com/graph/api/resources/mailfolder */
const WELL_KNOWN_FOLDERS = new Set([
  'archive', 'clutter', 'conflicts', 'conversationhistory', 'deleteditems', 'drafts', 'inbox', 'junkemail', 'localfailures',
  'msgfolderroot', 'outbox', 'recoverableitemsdeletions', 'scheduled', 'searchfolders', 'sentitems', 'serverfailures', 'syncissues',
]);

/** Graph pages hold at most this many messages whatever is asked for; a poll's `limit` may lower it. */
const MAX_PAGE_SIZE = 100;

const deltaEntry = z.object({
  id: z.string().min(1),
  receivedDateTime: z.string().nullish(),
  isRead: z.boolean().optional(),
  '@removed': z.unknown().optional(),
});
const deltaPage = z.object({
  value: z.array(deltaEntry),
  '@odata.nextLink': z.string().optional(),
  '@odata.deltaLink': z.string().optional(),
});
type DeltaPage = z.infer<typeof deltaPage>;

const folderList = z.object({ value: z.array(z.object({ id: z.string(), displayName: z.string() })) });
const folderAnswer = z.object({ id: z.string() });

/**
 * Reads one mailbox folder through Microsoft Graph (application permission Mail.Read, or
 * Mail.ReadWrite for markRead, move and delete): `messages/delta` with `changeType=created`,
 * so that a message this reader marked read or another client touched does not come back
 * as new; each message's MIME from `$value`, streamed. It shares the profile's Graph client
 * with the sender. `open` does not retry a refused token itself: callers wrap it in
 * `withAuthRetry`.
 */
export class GraphReader implements MailboxReader {
  readonly via = 'graph' as const;
  private readonly graph: GraphConnection;
  private readonly folders: GraphFolders;

  constructor(
    private readonly profile: Profile,
    private readonly deps: TransportDeps,
  ) {
    this.graph = graphConnection(profile, deps);
    this.folders = new GraphFolders(this.graph, deps.logger);
  }

  async open(options: { abortSignal?: AbortSignal } = {}): Promise<MailboxSession> {
    const name = this.profile.receive?.folder ?? 'Inbox';
    const folder = await this.folders.resolve(name, { create: false, abortSignal: options.abortSignal });
    // A well-known name resolves without asking Graph: the folder is read here all the same, so
    // that a token Graph refuses shows at open, where the poll renews it once (withAuthRetry),
    // not in the middle of a delta round, where it would fail the poll until the token expired.
    if (WELL_KNOWN_FOLDERS.has(name.toLowerCase())) {
      await this.graph.call(`${this.graph.userPath}/mailFolders/${encodeURIComponent(folder)}`, { abortSignal: options.abortSignal }, (request) => request.select('id').get() as Promise<unknown>);
    }
    return new GraphSession(this.profile, this.graph, this.folders, folder);
  }
}

/**
 * Folder names as profiles give them (a well-known name, a display name, `Parent/Child`, or
 * an id) resolved to what Graph takes in paths and as `destinationId`; ids are cached.
 */
class GraphFolders {
  private readonly ids = new Map<string, string>();

  constructor(
    private readonly graph: GraphConnection,
    private readonly logger: Logger,
  ) {}

  async resolve(name: string, options: { create: boolean; abortSignal?: AbortSignal }): Promise<string> {
    if (WELL_KNOWN_FOLDERS.has(name.toLowerCase())) return name.toLowerCase();
    const cached = this.ids.get(name);
    if (cached) return cached;
    const segments = name.split('/').filter((s) => s.length > 0);
    let parent: string | undefined;
    for (const [index, segment] of segments.entries()) {
      const found = await this.child(parent, segment, options.abortSignal);
      if (found) {
        parent = found;
        continue;
      }
      if (segments.length === 1 && !options.create) return this.byId(name, options.abortSignal);
      if (!options.create) throw this.notFound(name);
      parent = await this.create(parent, segment, options.abortSignal);
      this.logger.info({ operation: 'graph.createFolder', profile: this.graph.profile.name, outcome: 'ok', folder: segments.slice(0, index + 1).join('/') });
    }
    if (parent === undefined) throw this.notFound(name);
    this.ids.set(name, parent);
    return parent;
  }

  private collectionPath(parent: string | undefined): string {
    return parent === undefined ? `${this.graph.userPath}/mailFolders` : `${this.graph.userPath}/mailFolders/${encodeURIComponent(parent)}/childFolders`;
  }

  private async child(parent: string | undefined, displayName: string, abortSignal?: AbortSignal): Promise<string | undefined> {
    const answer = await this.graph.call(this.collectionPath(parent), { abortSignal }, (request) =>
      request.filter(`displayName eq '${displayName.replace(/'/g, "''")}'`).select('id,displayName').get(),
    );
    return folderList.parse(answer).value[0]?.id;
  }

  private async create(parent: string | undefined, displayName: string, abortSignal?: AbortSignal): Promise<string> {
    const answer = await this.graph.call(this.collectionPath(parent), { abortSignal }, (request) => request.post({ displayName }));
    return folderAnswer.parse(answer).id;
  }

  /** A name that is no display name may be a folder id. */
  private async byId(id: string, abortSignal?: AbortSignal): Promise<string> {
    try {
      const answer = await this.graph.call(`${this.graph.userPath}/mailFolders/${encodeURIComponent(id)}`, { abortSignal }, (request) => request.select('id').get());
      const folder = folderAnswer.parse(answer).id;
      this.ids.set(id, folder);
      return folder;
    } catch (error) {
      if (error instanceof MailError && (error.code === 'EMAILBOX' || error.code === 'EREJECTED')) throw this.notFound(id, error);
      throw error;
    }
  }

  private notFound(name: string, cause?: unknown): MailError {
    const profile = this.graph.profile;
    return new MailError('EMAILBOX', `profile "${profile.name}": the mailbox ${profile.mailbox} has no folder "${name}"`, {
      profile: profile.name,
      field: 'receive.folder',
      cause,
      hint: 'Name a folder by its display name (Parent/Child for a subfolder), a well-known name (Inbox, Archive, JunkEmail, ...) or its id.',
    });
  }
}

/** Milliseconds since the epoch, or undefined when Graph gave no time or one that does not parse. */
function receivedTime(receivedDateTime: string | null | undefined): number | undefined {
  if (receivedDateTime === undefined || receivedDateTime === null) return undefined;
  const time = Date.parse(receivedDateTime);
  return Number.isFinite(time) ? time : undefined;
}

/**
 * Oldest first, messages of unknown time after all the others. Ties compare equal, and sort is
 * stable, so they keep the page's order: the order is total, the same on every read of the page.
 */
function oldestFirst(a: { time: number | undefined }, b: { time: number | undefined }): number {
  if (a.time === b.time) return 0;
  if (a.time === undefined) return 1;
  if (b.time === undefined) return -1;
  return a.time - b.time;
}

class GraphSession implements MailboxSession {
  private wasResynced = false;
  private final?: GraphCursor;

  constructor(
    private readonly profile: Profile,
    private readonly graph: GraphConnection,
    private readonly folders: GraphFolders,
    private readonly folder: string,
  ) {}

  get resynced(): boolean {
    return this.wasResynced;
  }

  /**
   * Pages through the delta round, asking each page for at most what is left of `limit`.
   * A round resumes only at a page boundary, so a page is never split: should Graph send a
   * larger page than asked for, all of it is yielded. The cursor moves only when the
   * iteration ends: at the round's deltaLink, or at the nextLink where `limit` stopped it.
   * A consumer that stops early leaves `finalCursor()` undefined, so the old cursor stays
   * and nothing is skipped. Graph does not order delta pages; each page is yielded oldest first.
   */
  async *messages(cursor: ReaderCursor | undefined, options: { limit: number; abortSignal?: AbortSignal }): AsyncIterable<FetchedMessage> {
    this.final = undefined;
    const parsed = cursor === undefined ? undefined : graphCursorSchema.safeParse(cursor);
    const link = parsed?.success ? parsed.data.deltaLink : undefined;
    this.wasResynced = cursor !== undefined && link === undefined;
    const pageSize = (yielded: number) => Math.max(1, Math.min(options.limit - yielded, MAX_PAGE_SIZE));
    let page = await this.firstPage(link, pageSize(0), options.abortSignal);
    let yielded = 0;
    for (;;) {
      const entries = page.value
        .filter((entry) => entry['@removed'] === undefined)
        .map((entry) => ({ entry, time: receivedTime(entry.receivedDateTime) }))
        .sort(oldestFirst);
      for (const { entry, time } of entries) {
        options.abortSignal?.throwIfAborted();
        yielded++;
        yield {
          providerId: entry.id,
          receivedAt: time === undefined ? undefined : new Date(time),
          seen: entry.isRead,
          openSource: (o) => this.openSource(entry.id, o?.abortSignal),
        };
      }
      const deltaLink = page['@odata.deltaLink'];
      const nextLink = page['@odata.nextLink'];
      if (deltaLink !== undefined) {
        this.final = { deltaLink };
        return;
      }
      if (nextLink === undefined) {
        throw new MailError('EPROVIDER', `profile "${this.profile.name}": a Graph delta page carried neither @odata.nextLink nor @odata.deltaLink`, { profile: this.profile.name, hint: 'The next poll starts again from the stored cursor.' });
      }
      if (yielded >= options.limit) {
        this.final = { deltaLink: nextLink };
        return;
      }
      page = await this.page(nextLink, pageSize(yielded), options.abortSignal);
    }
  }

  /** A delta token Graph no longer honours (410 Gone, syncStateNotFound, resyncRequired) restarts the round without one. */
  private async firstPage(link: string | undefined, pageSize: number, abortSignal?: AbortSignal): Promise<DeltaPage> {
    if (link === undefined) return this.page(undefined, pageSize, abortSignal);
    try {
      return await this.page(link, pageSize, abortSignal);
    } catch (error) {
      if (!isExpiredDeltaError(error)) throw error;
      this.wasResynced = true;
      return this.page(undefined, pageSize, abortSignal);
    }
  }

  private async page(link: string | undefined, pageSize: number, abortSignal?: AbortSignal): Promise<DeltaPage> {
    const path = link ?? `${this.graph.userPath}/mailFolders/${encodeURIComponent(this.folder)}/messages/delta?changeType=created`;
    const answer = await this.graph.call(path, { abortSignal, prefer: [`odata.maxpagesize=${pageSize}`] }, (request) =>
      link === undefined ? request.select('id,receivedDateTime,isRead').get() : request.get(),
    );
    const parsed = deltaPage.safeParse(answer);
    if (!parsed.success) {
      throw new MailError('EPROVIDER', `profile "${this.profile.name}": unexpected Graph delta page: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { profile: this.profile.name, hint: 'Check that endpoints.graph points at Microsoft Graph.' });
    }
    return parsed.data;
  }

  finalCursor(): ReaderCursor | undefined {
    return this.final;
  }

  private messagePath(id: string): string {
    return `${this.graph.userPath}/messages/${encodeURIComponent(id)}`;
  }

  /** The MIME source from `$value`, streamed from the response body, never buffered whole. */
  private async openSource(id: string, abortSignal?: AbortSignal): Promise<NodeJS.ReadableStream> {
    const body = await this.graph.call(`${this.messagePath(id)}/$value`, { abortSignal }, (request) => request.getStream());
    if (!(body instanceof ReadableStream)) {
      throw new MailError('EPROVIDER', `profile "${this.profile.name}": Graph returned no MIME content for message ${id}`, { profile: this.profile.name, hint: 'The next poll tries again.' });
    }
    return translatedSource(Readable.fromWeb(body as WebReadableStream<Uint8Array>), (error) =>
      translateGraphError(error, { profile: this.profile.name, mailbox: this.profile.mailbox }));
  }

  /** A delta round advances as a whole (its deltaLink comes with the last page): no cursor per message. */
  async acknowledge(message: FetchedMessage, options: AcknowledgeOptions): Promise<undefined> {
    const path = this.messagePath(message.providerId);
    const call = { abortSignal: options.abortSignal };
    switch (options.afterFetch) {
      case 'none':
        return;
      case 'markRead':
        await this.graph.call(path, call, (request) => request.patch({ isRead: true }));
        return;
      case 'delete':
        // Graph's DELETE moves the message to Deleted Items, where retention policies apply.
        await this.graph.call(path, call, (request) => request.delete());
        return;
      case 'move': {
        const moveTo = options.moveTo ?? this.profile.receive?.moveTo;
        if (!moveTo) {
          throw new MailError('ECONFIG', `profile "${this.profile.name}": afterFetch "move" needs receive.moveTo`, { profile: this.profile.name, field: 'receive.moveTo', hint: 'Name the folder to move fetched messages to.' });
        }
        // A missing target folder is created, as the IMAP reader does: failing every poll after delivery would leave delivered messages piling up.
        const destinationId = await this.folders.resolve(moveTo, { create: true, abortSignal: options.abortSignal });
        await this.graph.call(`${path}/move`, call, (request) => request.post({ destinationId }));
        return;
      }
    }
  }

  async close(): Promise<void> {
    // Nothing to release: the Graph client is the profile's, shared and reused.
  }
}
