import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';

/** A Graph error answer: status, Graph error code, message and extra headers. */
export class GraphFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface PeerAnswer {
  status: number;
  body?: unknown;
  /** A raw (non-JSON) body with its content type, e.g. a message's MIME for `$value`. */
  raw?: { contentType: string; bytes: Buffer };
  headers?: Record<string, string>;
}

export interface StoredMessage {
  id: string;
  raw: Buffer;
  /** Absent when the stand-in is told to leave it out of its answers. */
  receivedDateTime?: string;
  isRead: boolean;
  internetMessageId?: string;
  subject?: string;
}

interface Folder {
  id: string;
  displayName: string;
  parentId?: string;
  wellKnownName?: string;
  messages: Map<string, StoredMessage>;
}

interface ChangeEvent {
  seq: number;
  folderId: string;
  type: 'created' | 'updated' | 'deleted';
  messageId: string;
}

/** State carried in a skip or delta token: the round's window over the change log and where the next page starts. */
interface DeltaState {
  folderId: string;
  epoch: number;
  since: number;
  upTo: number;
  offset: number;
  pageSize: number;
  changeType?: 'created' | 'updated' | 'deleted';
}

/** Graph's well-known folder names (https://learn.microsoft.com/graph/api/resources/mailfolder), lower-case. */
const WELL_KNOWN: Record<string, string> = {
  inbox: 'Inbox',
  drafts: 'Drafts',
  sentitems: 'Sent Items',
  deleteditems: 'Deleted Items',
  archive: 'Archive',
  junkemail: 'Junk Email',
};
const DEFAULT_PAGE_SIZE = 10;

const moveInput = z.object({ destinationId: z.string().min(1) });
const patchInput = z.object({ isRead: z.boolean().optional() });
const folderInput = z.object({ displayName: z.string().min(1) });

function newId(prefix: string): string {
  return `${prefix}${randomBytes(30).toString('base64url')}`;
}

function header(raw: string, name: string): string | undefined {
  const head = raw.split(/\r?\n\r?\n/, 1)[0] ?? '';
  return new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head)?.[1]?.replace(/\r?\n[ \t]+/g, ' ').trim();
}

/**
 * The mailbox side of the Graph stand-in: folders (well-known names, display names, child
 * folders), messages stored as raw MIME, a change log per folder that backs
 * `messages/delta` (paging with `$top` or `Prefer: odata.maxpagesize`, `@odata.nextLink`,
 * `@odata.deltaLink`, `@removed` entries, `changeType`), `$value`, PATCH `isRead`, `move`
 * and DELETE (which, as in Graph, moves the message to Deleted Items).
 */
export class GraphMailboxes {
  private readonly folders = new Map<string, Map<string, Folder>>();
  private readonly log: ChangeEvent[] = [];
  private seq = 0;
  private epoch = 0;
  /** Graph caps delta pages at its own size whatever the client prefers; set to make small pages. */
  maxPageSize?: number;
  /** Told of each message delivered into a folder (what Graph's change notifications report). */
  onDelivered?: (mailbox: string, folderId: string, messageId: string) => void;

  constructor(private readonly baseUrl: () => string) {}

  addMailbox(mailbox: string): void {
    if (this.folders.has(mailbox)) return;
    const folders = new Map<string, Folder>();
    for (const [wellKnownName, displayName] of Object.entries(WELL_KNOWN)) {
      const id = newId('AAMkAGF');
      folders.set(id, { id, displayName, wellKnownName, messages: new Map() });
    }
    this.folders.set(mailbox, folders);
  }

  /** Delivers a raw RFC 5322 message into a folder (well-known name, display name or id) and returns its id. `receivedAt: null` leaves receivedDateTime out of the answers. */
  addMessage(mailbox: string, folder: string, raw: string | Buffer, options: { receivedAt?: Date | null; isRead?: boolean } = {}): string {
    const target = this.folder(mailbox.toLowerCase(), folder);
    const text = Buffer.isBuffer(raw) ? raw.toString('latin1') : raw;
    const message: StoredMessage = {
      id: newId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A'),
      raw: Buffer.isBuffer(raw) ? raw : Buffer.from(raw, 'utf8'),
      ...(options.receivedAt !== null && { receivedDateTime: (options.receivedAt ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z') }),
      isRead: options.isRead ?? false,
      internetMessageId: header(text, 'Message-ID'),
      subject: header(text, 'Subject'),
    };
    target.messages.set(message.id, message);
    this.record(target.id, 'created', message.id);
    this.onDelivered?.(mailbox.toLowerCase(), target.id, message.id);
    return message.id;
  }

  /** The id of a folder (well-known name or id), 404 as Graph answers for an unknown one. */
  folderIdOf(mailbox: string, nameOrId: string): string {
    return this.folder(mailbox.toLowerCase(), nameOrId).id;
  }

  /** The messages now in a folder. */
  messagesIn(mailbox: string, folder: string): StoredMessage[] {
    return [...this.folder(mailbox.toLowerCase(), folder).messages.values()];
  }

  /** The messages in the top-level folder with this display name; undefined when the mailbox has no such folder. */
  messagesInFolderNamed(mailbox: string, displayName: string): StoredMessage[] | undefined {
    const folder = [...(this.folders.get(mailbox.toLowerCase())?.values() ?? [])].find((f) => f.parentId === undefined && f.displayName.toLowerCase() === displayName.toLowerCase());
    return folder && [...folder.messages.values()];
  }

  /** Every delta and skip token issued so far stops working, as after Exchange dropped the sync state. */
  expireDeltaTokens(): void {
    this.epoch++;
  }

  /** Answers mailFolders/... and messages/{id}/... requests for stored messages; undefined for anything else. */
  route(mailbox: string, method: string, rest: string[], url: URL, headers: IncomingHttpHeaders, body: Buffer): PeerAnswer | undefined {
    const path = rest.map((p) => decodeURIComponent(p));
    const [first, second, third, fourth, fifth] = path;
    if (first === 'mailFolders') {
      if (second === undefined) return method === 'GET' ? this.listFolders(mailbox, undefined, url) : method === 'POST' ? this.createFolder(mailbox, undefined, body) : undefined;
      const folder = this.folder(mailbox, second);
      if (third === undefined && method === 'GET') return { status: 200, body: this.folderJson(mailbox, folder) };
      if (third === 'childFolders' && fourth === undefined) return method === 'GET' ? this.listFolders(mailbox, folder.id, url) : method === 'POST' ? this.createFolder(mailbox, folder.id, body) : undefined;
      if (third === 'messages' && fourth === 'delta' && fifth === undefined && method === 'GET') return this.delta(mailbox, folder, url, headers);
      if (third === 'messages' && fourth === undefined && method === 'GET') return this.listMessages(folder, url);
      return undefined;
    }
    if (first !== 'messages' || second === undefined) return undefined;
    const found = this.findMessage(mailbox, second);
    if (!found) return undefined;
    const { folder, message } = found;
    if (third === '$value' && method === 'GET') return { status: 200, raw: { contentType: 'text/plain', bytes: message.raw } };
    if (third === undefined && method === 'GET') return { status: 200, body: this.messageJson(mailbox, message, folder) };
    if (third === undefined && method === 'PATCH') {
      const input = parse(body, patchInput);
      if (input.isRead !== undefined && input.isRead !== message.isRead) {
        message.isRead = input.isRead;
        this.record(folder.id, 'updated', message.id);
      }
      return { status: 200, body: this.messageJson(mailbox, message, folder) };
    }
    if (third === 'move' && method === 'POST') {
      const destination = this.folder(mailbox, parse(body, moveInput).destinationId);
      const moved = this.move(folder, destination, message, immutableIds(headers));
      return { status: 201, body: this.messageJson(mailbox, moved, destination) };
    }
    if (third === undefined && method === 'DELETE') {
      this.move(folder, this.folder(mailbox, 'deleteditems'), message, true);
      return { status: 204 };
    }
    return undefined;
  }

  private record(folderId: string, type: ChangeEvent['type'], messageId: string): void {
    this.log.push({ seq: ++this.seq, folderId, type, messageId });
  }

  /** Graph ids change on a move unless the client asked for immutable ids. https://learn.microsoft.com/graph/outlook-immutable-id */
  private move(from: Folder, to: Folder, message: StoredMessage, keepId: boolean): StoredMessage {
    from.messages.delete(message.id);
    this.record(from.id, 'deleted', message.id);
    const moved = keepId ? message : { ...message, id: newId('AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A') };
    to.messages.set(moved.id, moved);
    this.record(to.id, 'created', moved.id);
    return moved;
  }

  private folder(mailbox: string, nameOrId: string): Folder {
    const folders = this.folders.get(mailbox);
    if (!folders) throw new GraphFailure(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);
    const byId = folders.get(nameOrId);
    if (byId) return byId;
    const wellKnown = [...folders.values()].find((f) => f.wellKnownName === nameOrId.toLowerCase());
    if (wellKnown) return wellKnown;
    throw new GraphFailure(404, 'ErrorInvalidIdMalformed', 'Id is malformed.');
  }

  private findMessage(mailbox: string, id: string): { folder: Folder; message: StoredMessage } | undefined {
    for (const folder of this.folders.get(mailbox)?.values() ?? []) {
      const message = folder.messages.get(id);
      if (message) return { folder, message };
    }
    return undefined;
  }

  /** A folder's messages with the one filter a sent-mail lookup needs, `internetMessageId eq '<id>'` (OData quotes doubled); `$select` and `$top` as Graph applies them. */
  private listMessages(folder: Folder, url: URL): PeerAnswer {
    const filter = url.searchParams.get('$filter');
    const wanted = filter === null ? undefined : /^internetMessageId eq '((?:[^']|'')*)'$/.exec(filter)?.[1]?.replace(/''/g, "'");
    if (filter !== null && wanted === undefined) throw new GraphFailure(400, 'ErrorInvalidUrlQueryFilter', `Unsupported filter: ${filter}`);
    const select = url.searchParams.get('$select')?.split(',');
    const top = Number(url.searchParams.get('$top') ?? 10);
    const messages = [...folder.messages.values()].filter((m) => wanted === undefined || m.internetMessageId === wanted).slice(0, top);
    return { status: 200, body: { value: messages.map((m) => (select ? Object.fromEntries(select.map((f) => [f, (m as unknown as Record<string, unknown>)[f]])) : { id: m.id, internetMessageId: m.internetMessageId, subject: m.subject })) } };
  }

  /** Supports the one filter a folder lookup needs: `displayName eq '<name>'`. */
  private listFolders(mailbox: string, parentId: string | undefined, url: URL): PeerAnswer {
    const filter = url.searchParams.get('$filter');
    const wanted = filter === null ? undefined : /^displayName eq '((?:[^']|'')*)'$/.exec(filter)?.[1]?.replace(/''/g, "'");
    if (filter !== null && wanted === undefined) throw new GraphFailure(400, 'ErrorInvalidUrlQueryFilter', `Unsupported filter: ${filter}`);
    const folders = [...(this.folders.get(mailbox)?.values() ?? [])].filter((f) => f.parentId === parentId && (wanted === undefined || f.displayName.toLowerCase() === wanted.toLowerCase()));
    return { status: 200, body: { value: folders.map((f) => this.folderJson(mailbox, f)) } };
  }

  private createFolder(mailbox: string, parentId: string | undefined, body: Buffer): PeerAnswer {
    const { displayName } = parse(body, folderInput);
    const folders = this.folders.get(mailbox)!;
    if ([...folders.values()].some((f) => f.parentId === parentId && f.displayName.toLowerCase() === displayName.toLowerCase())) {
      throw new GraphFailure(409, 'ErrorFolderExists', 'A folder with the specified name already exists.');
    }
    const folder: Folder = { id: newId('AAMkAGF'), displayName, parentId, messages: new Map() };
    folders.set(folder.id, folder);
    return { status: 201, body: this.folderJson(mailbox, folder) };
  }

  private folderJson(mailbox: string, folder: Folder): Record<string, unknown> {
    const folders = this.folders.get(mailbox)!;
    const parentId = folder.parentId ?? `root-${mailbox}`;
    return {
      id: folder.id,
      displayName: folder.displayName,
      parentFolderId: parentId,
      childFolderCount: [...folders.values()].filter((f) => f.parentId === folder.id).length,
      totalItemCount: folder.messages.size,
      unreadItemCount: [...folder.messages.values()].filter((m) => !m.isRead).length,
    };
  }

  private messageJson(mailbox: string, message: StoredMessage, folder: Folder): Record<string, unknown> {
    return {
      '@odata.etag': `W/"${message.id.slice(-8)}"`,
      id: message.id,
      receivedDateTime: message.receivedDateTime,
      isRead: message.isRead,
      internetMessageId: message.internetMessageId,
      subject: message.subject,
      parentFolderId: folder.id,
      webLink: `${this.baseUrl()}/owa/?ItemID=${encodeURIComponent(message.id)}&mailbox=${encodeURIComponent(mailbox)}`,
    };
  }

  /**
   * One page of a delta round. The first request opens the round over the change log
   * since the last deltaLink (the whole folder without one); its skip tokens page through
   * that same window, and the last page's deltaLink starts the next round after it.
   */
  private delta(mailbox: string, folder: Folder, url: URL, headers: IncomingHttpHeaders): PeerAnswer {
    const skip = url.searchParams.get('$skiptoken');
    const deltaToken = url.searchParams.get('$deltatoken');
    let state: DeltaState;
    if (skip !== null || deltaToken !== null) {
      const decoded = decodeToken(skip ?? deltaToken ?? '');
      if (decoded.epoch !== this.epoch || decoded.folderId !== folder.id) {
        throw new GraphFailure(410, 'syncStateNotFound', 'The sync state generation is invalid or expired. Please start a new sync without a token.');
      }
      state = skip !== null ? decoded : { ...decoded, since: decoded.upTo, upTo: this.seq, offset: 0 };
    } else {
      const preferred = /odata\.maxpagesize=(\d+)/.exec(String(headers.prefer ?? ''))?.[1];
      const top = url.searchParams.get('$top');
      const changeType = url.searchParams.get('changeType');
      if (changeType !== null && changeType !== 'created' && changeType !== 'updated' && changeType !== 'deleted') throw new GraphFailure(400, 'ErrorInvalidUrlQuery', `Invalid changeType ${changeType}.`);
      state = { folderId: folder.id, epoch: this.epoch, since: 0, upTo: this.seq, offset: 0, pageSize: Math.min(Number(top ?? preferred ?? DEFAULT_PAGE_SIZE), this.maxPageSize ?? Number.MAX_SAFE_INTEGER), changeType: changeType ?? undefined };
    }
    const changes = this.changes(folder, state);
    const page = changes.slice(state.offset, state.offset + state.pageSize);
    const value = page.map(({ type, messageId }) => {
      const message = folder.messages.get(messageId);
      return type === 'deleted' || !message ? { '@odata.type': '#microsoft.graph.message', id: messageId, '@removed': { reason: 'deleted' } } : { '@odata.type': '#microsoft.graph.message', ...this.messageJson(mailbox, message, folder) };
    });
    const base = `${this.baseUrl()}/v1.0/users/${encodeURIComponent(mailbox)}/mailFolders/${encodeURIComponent(folder.id)}/messages/delta`;
    const next = state.offset + state.pageSize;
    const link = next < changes.length ? { '@odata.nextLink': `${base}?$skiptoken=${encodeToken({ ...state, offset: next })}` } : { '@odata.deltaLink': `${base}?$deltatoken=${encodeToken({ ...state, offset: 0 })}` };
    return { status: 200, body: { '@odata.context': `${this.baseUrl()}/v1.0/$metadata#Collection(message)`, ...link, value } };
  }

  /** The folder's changes in the round's window, one entry per message (its last change), oldest first. */
  private changes(folder: Folder, state: DeltaState): Array<{ type: ChangeEvent['type']; messageId: string }> {
    const last = new Map<string, ChangeEvent>();
    for (const event of this.log) {
      if (event.folderId !== folder.id || event.seq <= state.since || event.seq > state.upTo) continue;
      const previous = last.get(event.messageId);
      // A message created in this window and changed since is still new to the client.
      const type = previous?.type === 'created' && event.type === 'updated' ? 'created' : event.type;
      last.set(event.messageId, { ...event, type });
    }
    const entries = [...last.values()].sort((a, b) => a.seq - b.seq).map((e) => ({ type: e.type, messageId: e.messageId }));
    // Without a token a client only learns what is in the folder now.
    const current = state.since === 0 ? entries.filter((e) => e.type !== 'deleted') : entries;
    return state.changeType === undefined ? current : current.filter((e) => e.type === state.changeType);
  }
}

function immutableIds(headers: IncomingHttpHeaders): boolean {
  return /IdType="ImmutableId"/i.test(String(headers.prefer ?? ''));
}

function encodeToken(state: DeltaState): string {
  return Buffer.from(JSON.stringify(state)).toString('base64url');
}

const deltaState = z.object({
  folderId: z.string(),
  epoch: z.number(),
  since: z.number(),
  upTo: z.number(),
  offset: z.number(),
  pageSize: z.number().int().positive(),
  changeType: z.enum(['created', 'updated', 'deleted']).optional(),
});

function decodeToken(token: string): DeltaState {
  const expired = new GraphFailure(410, 'syncStateNotFound', 'The sync state generation is invalid or expired. Please start a new sync without a token.');
  const parsed = deltaState.safeParse(jsonOr(Buffer.from(token, 'base64url').toString('utf8'), expired));
  if (!parsed.success) throw expired;
  return parsed.data;
}

function jsonOr(text: string, failure: GraphFailure): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw failure;
  }
}

/** Parses a JSON request body against a schema, answering 400 as Graph does when it does not fit. */
export function parse<T extends z.ZodType>(body: Buffer, schema: T): z.output<T> {
  const value = jsonOr(body.toString('utf8'), new GraphFailure(400, 'BadRequest', 'Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.'));
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const code = issue.message.includes('X-') ? 'InvalidInternetMessageHeader' : 'ErrorInvalidRequest';
    throw new GraphFailure(400, code, `${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}
