import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { z } from 'zod';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { Acknowledged, Acknowledgement, AcknowledgeOptions, FetchedMessage, MailboxReader, MailboxSession, ReaderCursor, TransportDeps } from '../types.js';
import { GRAPH_BATCH_MAX_REQUESTS, GRAPH_MAX_RETRIES, IMMUTABLE_ID_PREFERENCE, MAX_HONOURED_RETRY_AFTER_SECONDS, graphConnection, type GraphBatchRequest, type GraphBatchResponse, type GraphConnection } from './graphClient.js';
import { translatedSource } from '../sourceStream.js';
import { isExpiredDeltaError, parseRetryAfter, translateGraphError } from './graphErrors.js';

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

/**
 * afterFetch batches in flight at once. The figure, within Graph's Outlook limit of four
 * concurrent requests per app and mailbox (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits);
 * Graph runs a batch's requests up to four at a time itself, so a request it finds over the limit
 * comes back as a 429 in the batch answer and is sent again (sendBatch).
 */
const AFTER_FETCH_BATCHES = 4;
/** Graph's own throttling answers, which its SDK retries too (RetryHandler: 429, 503, 504). */
const THROTTLED = new Set([429, 503, 504]);
/** The wait before a throttled change is sent again when Graph gave no Retry-After, doubled each time (the SDK's RetryHandler default). */
const RETRY_DELAY_SECONDS = 3;

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
    // A well-known name (and a display name, once resolved) asks Graph nothing here: the round's
    // first delta page is then the one request of a poll that finds nothing new. A token Graph
    // refuses shows at that page, before any message, and the poll renews it once there
    // (pollMailbox: withAuthRetry over the open and the first window).
    const folder = await this.folders.resolve(name, { create: false, abortSignal: options.abortSignal });
    return new GraphSession(this.profile, this.graph, this.folders, folder);
  }
}

/**
 * Folder names as profiles give them (a well-known name, a display name, `Parent/Child`, or
 * an id) resolved to what Graph takes in paths and as `destinationId`; ids are cached.
 */
export class GraphFolders {
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

/** A header of one batch response, whatever its case. */
function headerOf(response: GraphBatchResponse, name: string): string | undefined {
  const wanted = name.toLowerCase();
  return Object.entries(response.headers ?? {}).find(([key]) => key.toLowerCase() === wanted)?.[1];
}

/** A batch response's error in the shape the SDK throws (status, Graph code, message, headers), for translateGraphError. */
function batchFailure(response: GraphBatchResponse): { statusCode: number; code?: string; message: string; headers: { get(name: string): string | null } } {
  const error = z.object({ error: z.object({ code: z.string().optional(), message: z.string().optional() }) }).safeParse(response.body);
  return {
    statusCode: response.status,
    ...(error.success && error.data.error.code !== undefined && { code: error.data.error.code }),
    message: (error.success ? error.data.error.message : undefined) ?? `Graph answered ${response.status} in a batch`,
    headers: { get: (name) => headerOf(response, name) ?? null },
  };
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
    const change = await this.afterFetchRequest({ message, afterFetch: options.afterFetch, ...(options.moveTo !== undefined && { moveTo: options.moveTo }) }, options.abortSignal);
    if (change === undefined) return;
    const call = { abortSignal: options.abortSignal };
    const path = change.url;
    switch (change.method) {
      case 'PATCH':
        await this.graph.call(path, call, (request) => request.patch(change.body));
        return;
      case 'POST':
        await this.graph.call(path, call, (request) => request.post(change.body));
        return;
      case 'DELETE':
        await this.graph.call(path, call, (request) => request.delete());
        return;
    }
  }

  /**
   * The afterFetch changes of a window in JSON batches: up to GRAPH_BATCH_MAX_REQUESTS per batch
   * and AFTER_FETCH_BATCHES batches in flight, instead of a request per message. Graph answers each
   * change on its own; one it throttled (429, 503, 504) is sent again in a later batch after the
   * longest Retry-After among them, at most GRAPH_MAX_RETRIES times and never for longer than
   * MAX_HONOURED_RETRY_AFTER_SECONDS, as a single request would be; any other refusal is that
   * message's failure, translated as a single request's would be. The changes are independent
   * (each names its own message), so no dependsOn ordering is asked for.
   */
  async acknowledgeAll(acknowledgements: readonly Acknowledgement[], options: { abortSignal?: AbortSignal }): Promise<Acknowledged[]> {
    const answers: Acknowledged[] = acknowledgements.map(() => ({ ok: true }));
    const changes: Array<{ index: number; request: GraphBatchRequest }> = [];
    for (const [index, acknowledgement] of acknowledgements.entries()) {
      try {
        const request = await this.afterFetchRequest(acknowledgement, options.abortSignal);
        if (request !== undefined) changes.push({ index, request: { ...request, id: String(index) } });
      } catch (error) {
        answers[index] = { ok: false, error };
      }
    }
    const batches: Array<typeof changes> = [];
    for (let i = 0; i < changes.length; i += GRAPH_BATCH_MAX_REQUESTS) batches.push(changes.slice(i, i + GRAPH_BATCH_MAX_REQUESTS));
    // sendBatch never rejects: each of its changes ends with an outcome.
    let next = 0;
    const worker = async () => {
      while (next < batches.length) {
        const batch = batches[next++]!;
        for (const [index, outcome] of await this.sendBatch(batch, options.abortSignal)) answers[index] = outcome;
      }
    };
    await Promise.all(Array.from({ length: Math.min(AFTER_FETCH_BATCHES, batches.length) }, worker));
    return answers;
  }

  /** One batch, with its throttled changes sent again; answers the outcome of each change by its index. */
  private async sendBatch(batch: ReadonlyArray<{ index: number; request: GraphBatchRequest }>, abortSignal?: AbortSignal): Promise<Map<number, Acknowledged>> {
    const outcomes = new Map<number, Acknowledged>();
    let pending = [...batch];
    for (let attempt = 0; pending.length > 0; attempt++) {
      let responses: Map<string, GraphBatchResponse>;
      try {
        responses = new Map((await this.graph.batch(pending.map((c) => c.request), { abortSignal })).map((r) => [r.id, r]));
      } catch (error) {
        for (const c of pending) outcomes.set(c.index, { ok: false, error });
        break;
      }
      const throttled: Array<{ change: (typeof pending)[number]; retryAfter?: number }> = [];
      for (const change of pending) {
        const response = responses.get(change.request.id);
        if (response === undefined) {
          outcomes.set(change.index, { ok: false, error: new MailError('EPROVIDER', `profile "${this.profile.name}": Graph's batch answer left out request ${change.request.id}`, { profile: this.profile.name, hint: 'The next poll applies afterFetch to that message again.' }) });
        } else if (response.status < 300) {
          outcomes.set(change.index, { ok: true });
        } else {
          const retryAfter = parseRetryAfter(headerOf(response, 'Retry-After'));
          if (THROTTLED.has(response.status)) throttled.push({ change, ...(retryAfter !== undefined && { retryAfter }) });
          outcomes.set(change.index, { ok: false, error: translateGraphError(batchFailure(response), { profile: this.profile.name, mailbox: this.profile.mailbox }) });
        }
      }
      const wait = Math.max(0, ...throttled.map((t) => t.retryAfter ?? RETRY_DELAY_SECONDS * 2 ** attempt));
      if (throttled.length === 0 || attempt >= GRAPH_MAX_RETRIES || wait > MAX_HONOURED_RETRY_AFTER_SECONDS) break;
      try {
        await sleep(wait * 1000, undefined, { signal: abortSignal });
      } catch {
        break;
      }
      pending = throttled.map((t) => t.change);
    }
    return outcomes;
  }

  /** The request that applies afterFetch to one message; undefined for "none". */
  private async afterFetchRequest(acknowledgement: Acknowledgement, abortSignal?: AbortSignal): Promise<Omit<GraphBatchRequest, 'id'> | undefined> {
    const url = this.messagePath(acknowledgement.message.providerId);
    // Each request of a batch carries its own headers: the immutable-id preference goes on each.
    const headers = { Prefer: IMMUTABLE_ID_PREFERENCE };
    switch (acknowledgement.afterFetch) {
      case 'none':
        return undefined;
      case 'markRead':
        return { method: 'PATCH', url, headers: { ...headers, 'Content-Type': 'application/json' }, body: { isRead: true } };
      case 'delete':
        // Graph's DELETE moves the message to Deleted Items, where retention policies apply.
        return { method: 'DELETE', url, headers };
      case 'move': {
        const moveTo = acknowledgement.moveTo ?? this.profile.receive?.moveTo;
        if (!moveTo) {
          throw new MailError('ECONFIG', `profile "${this.profile.name}": afterFetch "move" needs receive.moveTo`, { profile: this.profile.name, field: 'receive.moveTo', hint: 'Name the folder to move fetched messages to.' });
        }
        // A missing target folder is created, as the IMAP reader does: failing every poll after delivery would leave delivered messages piling up.
        const destinationId = await this.folders.resolve(moveTo, { create: true, abortSignal });
        return { method: 'POST', url: `${url}/move`, headers: { ...headers, 'Content-Type': 'application/json' }, body: { destinationId } };
      }
    }
  }

  async close(): Promise<void> {
    // Nothing to release: the Graph client is the profile's, shared and reused.
  }
}
