import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { GraphFailure, GraphMailboxes, parse, type PeerAnswer } from './graphMailboxes.js';
import { GraphSubscriptionsPeer } from './graphSubscriptions.js';
import type { TokenEndpointPeer } from './tokenEndpoint.js';
import { serverTls } from './tls.js';

/** The audience Graph accepts tokens for in the public cloud. */
export const GRAPH_RESOURCE = 'https://graph.microsoft.com';

/**
 * Graph's documented limits the stand-in enforces: 4 MB per request
 * (https://learn.microsoft.com/graph/outlook-large-attachments) and at most 4 MiB per upload chunk.
 */
const REQUEST_MAX_BYTES = 4 * 1024 * 1024;
const CHUNK_MAX_BYTES = 4 * 1024 * 1024;
/** Requests one JSON batch may hold (https://learn.microsoft.com/graph/json-batching). */
const BATCH_MAX_REQUESTS = 20;

export interface GraphRequestRecord {
  method: string;
  /** Path without the query, e.g. /v1.0/users/support%40contoso.com/sendMail */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Milliseconds (Date.now scale, sub-millisecond precision) when the request arrived and when the answer was written. */
  receivedAt: number;
  respondedAt: number;
  status: number;
  /** Graph error code of the answer, when it was an error. */
  errorCode?: string;
}

/** A request that came inside a JSON batch: recorded apart from `requests`, which holds what arrived over HTTP. */
export interface BatchedRequestRecord {
  /** Index of the $batch request (in `requests`) that carried it. */
  batch: number;
  id: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  status: number;
  errorCode?: string;
}

export interface GraphFault {
  status: number;
  code: string;
  message?: string;
  /** Seconds, sent as Retry-After. */
  retryAfter?: number;
  /** How many matching requests get this answer. @default 1 */
  times?: number;
  /** Only requests whose method + path match, e.g. /POST .*\/sendMail$/. Default: every Graph API request. */
  match?: RegExp;
  /** Answered after the request was carried out (a gateway that timed out on a sendMail Exchange took), not instead of it. */
  after?: boolean;
}

export interface StoredAttachment {
  name: string;
  contentType: string;
  isInline: boolean;
  contentId?: string;
  bytes: Buffer;
  /** How the attachment reached the message: in the message JSON, its own POST, or an upload session. */
  via: 'message' | 'post' | 'uploadSession';
}

export interface SentMessage {
  mailbox: string;
  via: 'sendMail' | 'draft';
  saveToSentItems: boolean;
  /** The message resource as the client sent it, without attachments. */
  message: GraphMessageInput;
  attachments: StoredAttachment[];
  internetMessageId: string;
  draftId?: string;
}

export interface UploadChunkRecord {
  sessionId: string;
  contentRange?: string;
  start: number;
  end: number;
  total: number;
  length: number;
  /** True when the PUT carried an Authorization header (the service refuses those). */
  authorization: boolean;
  status: number;
}

const recipient = z.object({ emailAddress: z.object({ name: z.string().optional(), address: z.string() }) });
const fileAttachment = z.object({
  '@odata.type': z.literal('#microsoft.graph.fileAttachment'),
  name: z.string().min(1),
  contentType: z.string().optional(),
  contentBytes: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'contentBytes must be base64'),
  isInline: z.boolean().optional(),
  contentId: z.string().optional(),
});
const messageInput = z.object({
  subject: z.string().optional(),
  body: z.object({ contentType: z.enum(['html', 'text', 'HTML', 'Text']), content: z.string() }).optional(),
  importance: z.enum(['low', 'normal', 'high', 'Low', 'Normal', 'High']).optional(),
  toRecipients: z.array(recipient).optional(),
  ccRecipients: z.array(recipient).optional(),
  bccRecipients: z.array(recipient).optional(),
  replyTo: z.array(recipient).optional(),
  from: recipient.optional(),
  internetMessageId: z.string().regex(/^<[^<>\s]+@[^<>\s]+>$/, 'internetMessageId must be <id@domain>').optional(),
  internetMessageHeaders: z.array(z.object({ name: z.string().regex(/^x-/i, 'only headers that begin with X- may be set'), value: z.string() })).optional(),
  attachments: z.array(fileAttachment).optional(),
});
export type GraphMessageInput = Omit<z.output<typeof messageInput>, 'attachments'>;
const batchInput = z.object({
  requests: z.array(z.object({
    id: z.string().min(1),
    method: z.enum(['GET', 'POST', 'PATCH', 'PUT', 'DELETE']),
    url: z.string().min(1),
    headers: z.record(z.string(), z.string()).optional(),
    body: z.unknown().optional(),
    dependsOn: z.array(z.string()).optional(),
  })).min(1),
});
const sendMailInput = z.object({ message: messageInput, saveToSentItems: z.boolean().optional() });
const uploadSessionInput = z.object({
  AttachmentItem: z.object({
    attachmentType: z.literal('file'),
    name: z.string().min(1),
    size: z.number().int().positive(),
    contentType: z.string().optional(),
    isInline: z.boolean().optional(),
    contentId: z.string().optional(),
  }),
});

interface Draft {
  id: string;
  mailbox: string;
  message: GraphMessageInput;
  internetMessageId: string;
  attachments: StoredAttachment[];
}

interface UploadSession {
  id: string;
  draftId: string;
  token: string;
  item: z.output<typeof uploadSessionInput>['AttachmentItem'];
  received: Buffer[];
  offset: number;
  expiresAt: number;
}

const EMAIL = /^[^\s@<>]+@[^\s@<>]+\.[^\s@<>]+$/;

/**
 * A Microsoft Graph stand-in on https://127.0.0.1:<port> following Graph's documented mail
 * contract closely enough for the real @microsoft/microsoft-graph-client: bearer tokens
 * checked against the TokenEndpointPeer for the Graph audience, `sendMail` (202, empty body,
 * no content type), drafts, attachments, upload sessions whose upload URL lives on another
 * host name (`localhost`, as Outlook's lives outside graph.microsoft.com) and refuses an
 * Authorization header, `send`, Graph's error bodies, and programmable faults (429 with
 * Retry-After, 503, ErrorSendAsDenied, ...). It records every request and keeps what was sent.
 */
export class GraphPeer {
  readonly requests: GraphRequestRecord[] = [];
  /** Each request that came inside a POST /$batch, in the order the stand-in ran them. */
  readonly batched: BatchedRequestRecord[] = [];
  readonly sent: SentMessage[] = [];
  readonly uploadChunks: UploadChunkRecord[] = [];
  readonly drafts = new Map<string, Draft>();
  /** Addresses each mailbox may send as (Send As rights), besides itself. */
  readonly sendAs = new Map<string, Set<string>>();
  /** Folders and received messages, for the reader side (delta, $value, markRead, move, delete). */
  readonly mail = new GraphMailboxes(() => this.url);
  /** Change notification subscriptions: the validation handshake, notifications of new mail, lifecycle events, expiry. */
  readonly subscriptions = new GraphSubscriptionsPeer({ mailbox: (segment) => this.mailbox(segment), folderId: (mailbox, folder) => this.mail.folderIdOf(mailbox, folder) });
  private readonly mailboxes = new Set<string>();
  private readonly sessions = new Map<string, UploadSession>();
  private faults: Array<GraphFault & { remaining: number }> = [];
  /**
   * Graph's MailboxConcurrency: above this many requests in flight for one mailbox (per app, and
   * the tests use one app), a 429 ApplicationThrottled with Retry-After, as Graph answers. Unset: no limit.
   * https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits
   */
  concurrencyLimit?: number;
  /**
   * Called with each message the stand-in accepted for sending, before it answers 202; the answer
   * waits for the promise (a test stops the client there: Graph has the message, the client never hears it).
   */
  onAccepted?: (message: SentMessage) => void | Promise<void>;
  /**
   * How many Sent Items lookups miss a sent message before its copy is there: Exchange files the
   * copy a moment after it answered 202, so a lookup right after a send may not find it yet.
   */
  sentItemsLag = 0;
  private readonly unfiled: Array<{ sent: SentMessage; misses: number }> = [];
  /** Milliseconds every /users/{mailbox} request is held before it is answered, so that concurrency really builds up. */
  answerDelayMs = 0;
  /** The most /users/{mailbox} requests that were in flight at once, per mailbox (the ones refused included). */
  readonly maxInFlight = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  private server?: Server;
  private port = 0;

  constructor(private readonly entra: TokenEndpointPeer) {
    this.mail.onDelivered = (mailbox, folderId, messageId) => this.subscriptions.messageCreated(mailbox, folderId, messageId);
  }

  /** The service root, as a profile's `endpoints.graph`. */
  get url(): string {
    return `https://127.0.0.1:${this.port}`;
  }

  addMailbox(address: string): void {
    this.mailboxes.add(address.toLowerCase());
    this.mail.addMailbox(address.toLowerCase());
  }

  grantSendAs(mailbox: string, address: string): void {
    const set = this.sendAs.get(mailbox.toLowerCase()) ?? new Set<string>();
    set.add(address.toLowerCase());
    this.sendAs.set(mailbox.toLowerCase(), set);
  }

  /** Answers the next matching requests with an error instead of serving them. */
  inject(fault: GraphFault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Graph API requests (not upload PUTs) whose method and path match. */
  apiRequests(method?: string, pathPattern?: RegExp): GraphRequestRecord[] {
    return this.requests.filter((r) => r.path.startsWith('/v1.0/') && (method === undefined || r.method === method) && (pathPattern === undefined || pathPattern.test(r.path)));
  }

  async start(): Promise<this> {
    const tls = serverTls();
    this.server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      const receivedAt = performance.timeOrigin + performance.now();
      void this.handle(req, res, receivedAt);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse, receivedAt: number): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const record: GraphRequestRecord = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, receivedAt, respondedAt: 0, status: 0 };
    this.requests.push(record);
    const inMailbox = this.enterMailbox(url, res);
    const overConcurrency = inMailbox?.over ?? (inMailbox === undefined ? undefined : false);
    const answer = (status: number, body?: unknown, headers: Record<string, string> = {}, raw?: PeerAnswer['raw']) => {
      record.status = status;
      if (raw) {
        res.writeHead(status, { ...headers, 'Content-Type': raw.contentType, 'Content-Length': String(raw.bytes.length) });
        res.end(raw.bytes);
      } else if (body === undefined) {
        // Graph's empty answers (202 Accepted, 204) carry no content type.
        res.writeHead(status, { ...headers, 'Content-Length': '0' });
        res.end();
      } else {
        const text = JSON.stringify(body);
        res.writeHead(status, { ...headers, 'Content-Type': 'application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
        res.end(text);
      }
      record.respondedAt = performance.timeOrigin + performance.now();
      inMailbox?.leave();
    };
    try {
      const body = await readBody(req);
      if (url.pathname.startsWith('/api/v2.0/')) {
        const result = this.uploadChunk(req, url, body);
        return answer(result.status, result.body, result.headers);
      }
      if (!url.pathname.startsWith('/v1.0/')) throw new GraphFailure(400, 'BadRequest', `Invalid version: ${url.pathname.split('/')[1] ?? ''}`);
      this.authorize(req);
      this.applyFault(record);
      if (overConcurrency) throw overConcurrency;
      if (this.answerDelayMs > 0 && overConcurrency === false) await new Promise((resolve) => setTimeout(resolve, this.answerDelayMs));
      if (body.length > REQUEST_MAX_BYTES) throw new GraphFailure(413, 'RequestEntityTooLarge', `The request is larger than ${REQUEST_MAX_BYTES} bytes.`);
      const sentBefore = this.sent.length;
      if (req.method === 'GET' && /\/mailFolders\/sentitems\/messages$/.test(url.pathname)) this.fileDueCopies();
      const result = url.pathname === '/v1.0/$batch' && req.method === 'POST'
        ? this.batch(req, body)
        : url.pathname.startsWith('/v1.0/subscriptions') ? await this.subscriptions.route(req.method ?? 'GET', url.pathname.split('/').slice(2), body, () => this.signedInUser(req)) : this.route(req, url, body);
      if (this.sent.length > sentBefore) await this.onAccepted?.(this.sent.at(-1)!);
      this.applyFault(record, true);
      return answer(result.status, result.body, result.headers, result.raw);
    } catch (error) {
      const failure = error instanceof GraphFailure ? error : new GraphFailure(500, 'generalException', String(error));
      record.errorCode = failure.code;
      const date = new Date().toISOString();
      answer(failure.status, { error: { code: failure.code, message: failure.message, innerError: { date, 'request-id': randomUUID(), 'client-request-id': String(req.headers['client-request-id'] ?? randomUUID()) } } }, failure.headers);
    }
  }

  /**
   * Counts a /users/{mailbox} request in flight from its arrival until its answer is written
   * (`leave`, or the connection closing first): `over` is the 429 to answer when it is over
   * concurrencyLimit; undefined for requests that name no mailbox.
   */
  private enterMailbox(url: URL, res: ServerResponse): { over?: GraphFailure; leave: () => void } | undefined {
    const segment = /^\/v1\.0\/users\/([^/]+)/.exec(url.pathname)?.[1];
    if (segment === undefined) return undefined;
    const mailbox = decodeURIComponent(segment).toLowerCase();
    const count = (this.inFlight.get(mailbox) ?? 0) + 1;
    this.maxInFlight.set(mailbox, Math.max(this.maxInFlight.get(mailbox) ?? 0, count));
    if (this.concurrencyLimit !== undefined && count > this.concurrencyLimit) {
      return { over: new GraphFailure(429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.', { 'Retry-After': '1' }), leave: () => {} };
    }
    this.inFlight.set(mailbox, count);
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.inFlight.set(mailbox, (this.inFlight.get(mailbox) ?? 1) - 1);
    };
    res.once('close', leave);
    return { leave };
  }

  /** Requests that addressed the mailbox as /me. */
  meRequests = 0;

  private authorize(req: IncomingMessage): void {
    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const challenge = { 'WWW-Authenticate': `Bearer realm="", authorization_uri="${this.entra.url}/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"` };
    if (!token) throw new GraphFailure(401, 'InvalidAuthenticationToken', 'Access token is empty.', challenge);
    if (!this.entra.validate(token)) throw new GraphFailure(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.', challenge);
    if (!this.entra.validate(token, GRAPH_RESOURCE)) throw new GraphFailure(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.', challenge);
  }

  private applyFault(record: GraphRequestRecord, after = false): void {
    const fault = this.faults.find((f) => f.remaining > 0 && (f.after ?? false) === after && (f.match === undefined || f.match.test(`${record.method} ${record.path}`)));
    if (!fault) return;
    fault.remaining--;
    throw new GraphFailure(fault.status, fault.code, fault.message ?? `Injected ${fault.code}.`, fault.retryAfter !== undefined ? { 'Retry-After': String(fault.retryAfter) } : {});
  }

  private mailbox(segment: string): string {
    const address = decodeURIComponent(segment).toLowerCase();
    if (!this.mailboxes.has(address)) throw new GraphFailure(404, 'ErrorInvalidUser', `The requested user '${address}' is invalid.`);
    return address;
  }

  /**
   * JSON batching as Graph documents it (https://learn.microsoft.com/graph/json-batching): at most
   * 20 requests with unique ids, urls relative to the version, Content-Type required with a body;
   * each answered on its own with id, status, headers and body (a Graph error body for a failure),
   * and, as Graph allows, not in the order asked: the stand-in answers in reverse, so a client
   * must match by id. Faults apply to each request inside as to one over HTTP (a 429 with its
   * Retry-After in that response's headers); the batch itself answers 200.
   */
  private batch(req: IncomingMessage, body: Buffer): PeerAnswer {
    const { requests } = parse(body, batchInput);
    if (requests.length > BATCH_MAX_REQUESTS) throw new GraphFailure(400, 'BadRequest', `Batch request has ${requests.length} requests; the limit is ${BATCH_MAX_REQUESTS}.`);
    if (new Set(requests.map((r) => r.id)).size !== requests.length) throw new GraphFailure(400, 'BadRequest', 'Batch request ids must be unique.');
    const batchIndex = this.requests.length - 1;
    const responses = requests.map((inner) => {
      const headers = Object.fromEntries(Object.entries(inner.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
      const url = new URL(`/v1.0${inner.url.startsWith('/') ? '' : '/'}${inner.url}`, this.url);
      const record: BatchedRequestRecord = { batch: batchIndex, id: inner.id, method: inner.method, path: url.pathname, headers, status: 0 };
      this.batched.push(record);
      try {
        if (inner.body !== undefined && headers['content-type'] === undefined) throw new GraphFailure(400, 'BadRequest', 'Content-Type header is required when the request has a body.');
        this.applyFault({ ...record, query: url.searchParams, headers: req.headers, receivedAt: 0, respondedAt: 0 });
        const result = this.route({ method: inner.method, headers: { ...headers, authorization: req.headers.authorization } }, url, inner.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(inner.body)));
        record.status = result.status;
        const content = result.raw ? { headers: { 'Content-Type': result.raw.contentType }, body: result.raw.bytes.toString('base64') } : result.body === undefined ? {} : { headers: { 'Content-Type': 'application/json' }, body: result.body };
        return { id: inner.id, status: result.status, ...content, ...(result.headers && { headers: { ...result.headers, ...content.headers } }) };
      } catch (error) {
        const failure = error instanceof GraphFailure ? error : new GraphFailure(500, 'generalException', String(error));
        record.status = failure.status;
        record.errorCode = failure.code;
        return { id: inner.id, status: failure.status, headers: { 'Content-Type': 'application/json', ...failure.headers }, body: { error: { code: failure.code, message: failure.message } } };
      }
    });
    return { status: 200, body: { responses: responses.reverse() } };
  }

  private signedInUser(req: Pick<IncomingMessage, 'headers'>): string {
    const upn = this.entra.validate(/^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '')?.upn;
    if (upn === undefined) throw new GraphFailure(400, 'BadRequest', '/me request is only valid with delegated authentication flow.');
    return upn;
  }

  private route(req: Pick<IncomingMessage, 'method' | 'headers'>, url: URL, body: Buffer): PeerAnswer {
    const method = req.method ?? 'GET';
    let parts = url.pathname.split('/').slice(2);
    // /me is the signed-in user of a delegated token (how Graph addresses a personal account); app-only tokens have none.
    if (parts[0] === 'me') {
      this.meRequests++;
      parts = ['users', encodeURIComponent(this.signedInUser(req)), ...parts.slice(1)];
    }
    if (parts[0] !== 'users' || parts[1] === undefined) throw new GraphFailure(400, 'BadRequest', `Resource not found for the segment '${parts[0] ?? ''}'.`);
    const mailbox = this.mailbox(parts[1]);
    const rest = parts.slice(2);
    const isDraft = rest[0] === 'messages' && rest[1] !== undefined && this.drafts.has(decodeURIComponent(rest[1]));
    if (!isDraft) {
      const answer = this.mail.route(mailbox, method, rest, url, req.headers, body);
      if (answer) return answer;
    }
    const key = `${method} ${rest.map((p, i) => (rest[i - 1] === 'messages' ? '{id}' : p)).join('/')}`;
    switch (key) {
      case 'POST sendMail':
        return this.sendMail(mailbox, parse(body, sendMailInput));
      case 'POST messages':
        return this.createDraft(mailbox, parse(body, messageInput));
      case 'POST messages/{id}/attachments':
        return this.addAttachment(this.draft(mailbox, rest[1]!), parse(body, fileAttachment));
      case 'POST messages/{id}/attachments/createUploadSession':
        return this.createUploadSession(this.draft(mailbox, rest[1]!), parse(body, uploadSessionInput));
      case 'POST messages/{id}/send':
        // Graph documents this action without a request body ("Don't supply a request body for this method").
        if (body.length > 0) throw new GraphFailure(400, 'BadRequest', 'The send action takes no request body.');
        return this.sendDraft(this.draft(mailbox, rest[1]!));
      case 'DELETE messages/{id}':
        this.drafts.delete(this.draft(mailbox, rest[1]!).id);
        return { status: 204 };
      default:
        throw new GraphFailure(400, 'BadRequest', `Resource not found for the segment '${rest[0] ?? ''}'.`);
    }
  }

  private checkMessage(mailbox: string, message: z.output<typeof messageInput>): void {
    const all = [...(message.toRecipients ?? []), ...(message.ccRecipients ?? []), ...(message.bccRecipients ?? [])];
    for (const r of [...all, ...(message.replyTo ?? [])]) {
      if (!EMAIL.test(r.emailAddress.address)) throw new GraphFailure(400, 'ErrorInvalidRecipients', `At least one recipient isn't valid., Recipient '${r.emailAddress.address}' is not resolved.`);
    }
    const from = message.from?.emailAddress.address.toLowerCase();
    if (from !== undefined && from !== mailbox && !this.sendAs.get(mailbox)?.has(from)) {
      throw new GraphFailure(403, 'ErrorSendAsDenied', 'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account., Cannot submit message.');
    }
  }

  private sendMail(mailbox: string, input: z.output<typeof sendMailInput>): { status: number } {
    this.checkMessage(mailbox, input.message);
    const count = (input.message.toRecipients?.length ?? 0) + (input.message.ccRecipients?.length ?? 0) + (input.message.bccRecipients?.length ?? 0);
    if (count === 0) throw new GraphFailure(400, 'ErrorInvalidRecipients', 'At least one recipient is required, but none were found.');
    const { attachments, ...message } = input.message;
    this.sent.push({
      mailbox,
      via: 'sendMail',
      saveToSentItems: input.saveToSentItems ?? true,
      message,
      attachments: (attachments ?? []).map((a) => storedAttachment(a, 'message')),
      internetMessageId: message.internetMessageId ?? generatedMessageId(),
    });
    if (input.saveToSentItems ?? true) this.fileSentCopy(this.sent.at(-1)!);
    return { status: 202 };
  }

  private createDraft(mailbox: string, input: z.output<typeof messageInput>): { status: number; body: unknown } {
    this.checkMessage(mailbox, input);
    const { attachments, ...message } = input;
    const id = `AAkALg${randomBytes(24).toString('base64url')}`;
    const draft: Draft = { id, mailbox, message, internetMessageId: message.internetMessageId ?? generatedMessageId(), attachments: (attachments ?? []).map((a) => storedAttachment(a, 'message')) };
    this.drafts.set(id, draft);
    return { status: 201, body: { '@odata.context': `${this.url}/v1.0/$metadata#users('${mailbox}')/messages/$entity`, id, isDraft: true, internetMessageId: draft.internetMessageId, subject: message.subject ?? '', hasAttachments: draft.attachments.length > 0 } };
  }

  private draft(mailbox: string, id: string): Draft {
    const draft = this.drafts.get(decodeURIComponent(id));
    if (!draft || draft.mailbox !== mailbox) throw new GraphFailure(404, 'ErrorItemNotFound', 'The specified object was not found in the store.');
    return draft;
  }

  private addAttachment(draft: Draft, input: z.output<typeof fileAttachment>): { status: number; body: unknown } {
    const stored = storedAttachment(input, 'post');
    if (stored.bytes.length > 3 * 1024 * 1024) throw new GraphFailure(413, 'ErrorAttachmentSizeLimitExceeded', 'Attachments over 3 MB must be added through an upload session.');
    draft.attachments.push(stored);
    return { status: 201, body: { '@odata.type': '#microsoft.graph.fileAttachment', id: randomUUID(), name: stored.name, size: stored.bytes.length } };
  }

  private createUploadSession(draft: Draft, input: z.output<typeof uploadSessionInput>): { status: number; body: unknown } {
    const id = randomBytes(12).toString('hex');
    const session: UploadSession = { id, draftId: draft.id, token: randomBytes(24).toString('base64url'), item: input.AttachmentItem, received: [], offset: 0, expiresAt: Date.now() + 6 * 3600 * 1000 };
    this.sessions.set(id, session);
    // The real upload URL lives on outlook.office.com, outside Graph's hosts, and carries its own token.
    const uploadUrl = `https://localhost:${this.port}/api/v2.0/Users('${encodeURIComponent(draft.mailbox)}')/Messages('${draft.id}')/AttachmentSessions('${id}')?authtoken=${session.token}`;
    return { status: 201, body: { '@odata.context': `${this.url}/v1.0/$metadata#microsoft.graph.uploadSession`, uploadUrl, expirationDateTime: new Date(session.expiresAt).toISOString(), nextExpectedRanges: ['0-'] } };
  }

  private uploadChunk(req: IncomingMessage, url: URL, body: Buffer): { status: number; body?: unknown; headers?: Record<string, string> } {
    const sessionId = /AttachmentSessions\('([^']+)'\)$/.exec(decodeURIComponent(url.pathname))?.[1] ?? '';
    const contentRange = req.headers['content-range'];
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(contentRange ?? '');
    const chunk: UploadChunkRecord = {
      sessionId,
      contentRange,
      start: Number(range?.[1] ?? -1),
      end: Number(range?.[2] ?? -1),
      total: Number(range?.[3] ?? -1),
      length: body.length,
      authorization: req.headers.authorization !== undefined,
      status: 0,
    };
    this.uploadChunks.push(chunk);
    const fail = (failure: GraphFailure) => {
      chunk.status = failure.status;
      throw failure;
    };
    const session = this.sessions.get(sessionId);
    if (req.method !== 'PUT') fail(new GraphFailure(405, 'MethodNotAllowed', 'Upload sessions take PUT.'));
    if (chunk.authorization) fail(new GraphFailure(401, 'InvalidAuthenticationToken', 'The upload URL is pre-authenticated: a request with an Authorization header is refused.'));
    if (!session || url.searchParams.get('authtoken') !== session.token || session.expiresAt < Date.now()) fail(new GraphFailure(404, 'ErrorItemNotFound', 'The upload session was not found or has expired.'));
    if (!range) fail(new GraphFailure(400, 'InvalidContentRange', 'Content-Range must be "bytes start-end/total".'));
    const s = session!;
    if (chunk.total !== s.item.size) fail(new GraphFailure(400, 'InvalidContentRange', `The total ${chunk.total} differs from the session size ${s.item.size}.`));
    if (chunk.start !== s.offset) fail(new GraphFailure(416, 'InvalidRange', `Expected the range starting at ${s.offset}.`));
    if (chunk.end - chunk.start + 1 !== body.length) fail(new GraphFailure(400, 'InvalidContentRange', 'The Content-Range does not match the body length.'));
    if (body.length > CHUNK_MAX_BYTES) fail(new GraphFailure(413, 'RequestEntityTooLarge', `A chunk may hold at most ${CHUNK_MAX_BYTES} bytes.`));
    s.received.push(body);
    s.offset += body.length;
    if (s.offset < s.item.size) {
      chunk.status = 200;
      return { status: 200, body: { '@odata.context': `${this.url}/v1.0/$metadata#microsoft.graph.uploadSession`, expirationDateTime: new Date(s.expiresAt).toISOString(), nextExpectedRanges: [`${s.offset}`] } };
    }
    const draft = this.drafts.get(s.draftId);
    if (!draft) fail(new GraphFailure(404, 'ErrorItemNotFound', 'The message of this upload session no longer exists.'));
    draft!.attachments.push({ name: s.item.name, contentType: s.item.contentType ?? 'application/octet-stream', isInline: s.item.isInline ?? false, contentId: s.item.contentId, bytes: Buffer.concat(s.received), via: 'uploadSession' });
    this.sessions.delete(s.id);
    chunk.status = 201;
    return { status: 201, headers: { Location: `${this.url}/v1.0/users('${draft!.mailbox}')/messages('${draft!.id}')/attachments('${randomUUID()}')` } };
  }

  private sendDraft(draft: Draft): { status: number } {
    const count = (draft.message.toRecipients?.length ?? 0) + (draft.message.ccRecipients?.length ?? 0) + (draft.message.bccRecipients?.length ?? 0);
    if (count === 0) throw new GraphFailure(400, 'ErrorInvalidRecipients', 'At least one recipient is required, but none were found.');
    this.drafts.delete(draft.id);
    this.sent.push({ mailbox: draft.mailbox, via: 'draft', saveToSentItems: true, message: draft.message, attachments: draft.attachments, internetMessageId: draft.internetMessageId, draftId: draft.id });
    this.fileSentCopy(this.sent.at(-1)!);
    return { status: 202 };
  }

  /** Exchange keeps the sent message in the mailbox's Sent Items, with its internetMessageId, once sentItemsLag lookups have missed it. */
  private fileSentCopy(sent: SentMessage): void {
    if (this.sentItemsLag > 0) this.unfiled.push({ sent, misses: this.sentItemsLag });
    else this.fileCopy(sent);
  }

  private fileCopy(sent: SentMessage): void {
    this.mail.addMessage(sent.mailbox, 'sentitems', `Message-ID: ${sent.internetMessageId}\r\nSubject: ${sent.message.subject ?? ''}\r\n\r\n`, { isRead: true });
  }

  private fileDueCopies(): void {
    for (const pending of [...this.unfiled]) {
      if (pending.misses-- > 0) continue;
      this.unfiled.splice(this.unfiled.indexOf(pending), 1);
      this.fileCopy(pending.sent);
    }
  }
}

function storedAttachment(a: z.output<typeof fileAttachment>, via: StoredAttachment['via']): StoredAttachment {
  return { name: a.name, contentType: a.contentType ?? 'application/octet-stream', isInline: a.isInline ?? false, contentId: a.contentId, bytes: Buffer.from(a.contentBytes, 'base64'), via };
}

function generatedMessageId(): string {
  return `<${randomBytes(12).toString('hex')}@graph.peer>`;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
