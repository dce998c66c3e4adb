import type { Telemetry } from '../telemetry/index.js';
import type { TokenProvider } from '../identity/tokenProvider.js';
import type { Logger } from '../log.js';
import type { ProxyRouter } from '../network/proxy.js';
import type { OutgoingMessage } from '../mail/outgoing.js';

/** Clients one profile's sender and reader share (its Graph client), kept and closed by their owner, the runtime. */
export interface ProfileResources {
  once<T>(key: string, create: () => T): T;
}

/** What every transport is built with: the profile's token provider, the logger, and the profile's shared resources. */
export interface TransportDeps {
  tokens: TokenProvider;
  logger: Logger;
  /** Without it (a diagnosis, a test), the transport makes its own clients. */
  resources?: ProfileResources;
  /** Where the profile's connections go (its proxy, HTTPS_PROXY, NO_PROXY); without it, directly. */
  proxy?: ProxyRouter;
  /** Where a transport counts what only it sees (each throttled Graph answer); without it, nowhere. */
  telemetry?: Telemetry;
  /** The mailbox's Graph limits shared by every instance (shared/governor); without it, Graph requests are not held back. */
  governor?: RequestGovernor;
  /** SENT_ITEMS_LOOKUP_SECONDS: how long a lookup of an unknown outcome waits for the sent copy to be filed; without it, the default (21 s). */
  sentItemsLookupSeconds?: number;
}

/** What holds a Graph request to the limits of its app and mailbox across instances. */
export interface RequestGovernor {
  /**
   * Waits for a slot among the mailbox's concurrent requests (as many as `cost`, up to the limit:
   * a $batch runs its requests in parallel) and takes `cost` requests from its budget. ETHROTTLED
   * with retryAfter when the budget is spent or the slots stay taken; the abort signal's reason when aborted.
   */
  admit(options: { cost: number; abortSignal?: AbortSignal }): Promise<{ release(): void }>;
  /** Graph throttled a request anyway: counted where every instance's health report reads it. */
  throttled(): void;
}

export interface SendOptions {
  abortSignal?: AbortSignal;
}

export interface SendResult {
  /** RFC 5322 Message-ID of the sent message. */
  messageId: string;
  /** The provider's own id where it reports one (Graph message id, SMTP queue id). */
  providerId?: string;
}

/** One outgoing transport. Errors are MailErrors, translated at this edge. */
export interface MailSender {
  readonly via: 'graph' | 'smtp' | 'file';
  send(message: OutgoingMessage, options?: SendOptions): Promise<SendResult>;
  /**
   * Whether the mailbox's sent mail holds a message with this Message-ID: how a send whose
   * outcome is unknown (its worker died, the answer was lost after the whole message went) is
   * settled before it is sent again. Graph: Sent Items; SMTP: the Sent folder over IMAP
   * (send.lookupSent). Absent where the sender cannot look: send.unknownOutcome decides then.
   */
  findSent?(messageId: string, options?: { abortSignal?: AbortSignal }): Promise<boolean>;
  /** Releases pooled connections (process shutdown, tests). */
  close?(): Promise<void>;
}

/**
 * Reader cursors are opaque JSON per transport, stored per mailbox: IMAP
 * `{ uidValidity, lastUid }`, POP3 `{ seen: string[] }` (UIDLs), Graph `{ deltaLink }`,
 * file `{ seen: string[] }`.
 */
export type ReaderCursor = Record<string, unknown>;

/** One message as a reader yields it: provider ids plus the raw RFC 5322 source, streamed. */
export interface FetchedMessage {
  /** Stable provider id within the mailbox: IMAP `<uidValidity>:<uid>`, POP3 UIDL, Graph immutable id, file name. */
  providerId: string;
  receivedAt?: Date;
  size?: number;
  seen?: boolean;
  /** Opens the raw source. Large messages are streamed, never held whole. */
  openSource(options?: { abortSignal?: AbortSignal }): Promise<NodeJS.ReadableStream>;
}

export type AfterFetch = 'markRead' | 'move' | 'delete' | 'none';

export interface AcknowledgeOptions {
  afterFetch: AfterFetch;
  /** For afterFetch "move"; default the profile's receive.moveTo. */
  moveTo?: string;
  abortSignal?: AbortSignal;
}

export interface Acknowledgement {
  message: FetchedMessage;
  afterFetch: AfterFetch;
  /** For afterFetch "move"; default the profile's receive.moveTo. */
  moveTo?: string;
}

/** What became of one acknowledgement: done (with the cursor `acknowledge` would answer) or failed. */
export type Acknowledged = { ok: true; cursor?: ReaderCursor } | { ok: false; error: unknown };

/** An open connection to one mailbox folder for one poll. */
export interface MailboxSession {
  /**
   * New messages since the cursor, oldest first, at most `limit`. A cursor the server no
   * longer honours (changed UIDVALIDITY, expired delta token) restarts from the beginning
   * and sets `resynced`; the dedupe table then keeps anything from being delivered twice.
   */
  messages(cursor: ReaderCursor | undefined, options: { limit: number; abortSignal?: AbortSignal }): AsyncIterable<FetchedMessage>;
  /** The cursor once the whole iteration was acknowledged (Graph: the new deltaLink). */
  finalCursor(): ReaderCursor | undefined;
  /** True when the last `messages` call had to discard the cursor and start over. */
  readonly resynced: boolean;
  /**
   * The message is done with (delivered, dead-lettered, filtered or a duplicate): applies
   * `afterFetch` to it ('none' for a message to leave as it is) and answers the cursor to store
   * once it and every message before it are acknowledged; undefined where a transport can only
   * advance per batch (Graph delta: see finalCursor). The cursor exists only as this answer, so
   * it cannot be read before the action: POP3 leaves out a message whose DELE is not committed
   * yet, so that it comes again should QUIT fail.
   */
  acknowledge(message: FetchedMessage, options: AcknowledgeOptions): Promise<ReaderCursor | undefined>;
  /**
   * Several acknowledgements at once, for a transport that applies afterFetch in fewer requests
   * than one per message (Graph: JSON batches). Each is applied as `acknowledge` would apply it,
   * in any order; the answer holds, in the order given, the cursor or the failure of each, so
   * that the caller advances only over the unbroken run that succeeded. Without it, the caller
   * acknowledges one message at a time, in order, and stops at the first failure.
   */
  acknowledgeAll?(acknowledgements: readonly Acknowledgement[], options: { abortSignal?: AbortSignal }): Promise<Acknowledged[]>;
  close(): Promise<void>;
}

/** One incoming transport. Errors are MailErrors, translated at this edge. */
export interface MailboxReader {
  readonly via: 'graph' | 'imap' | 'pop3' | 'file';
  open(options?: { abortSignal?: AbortSignal }): Promise<MailboxSession>;
}

/** A provider's subscription to new mail in one folder: where its notifications come from. */
export interface MailSubscription {
  id: string;
  /** The folder's messages, as the provider names the subscribed resource. */
  resource: string;
  expiresAt: Date;
}

export interface SubscribeRequest {
  /** Where the provider posts a notification when mail arrives, and its lifecycle events. */
  notificationUrl: string;
  lifecycleNotificationUrl: string;
  /** The secret the provider sends back with every notification, which proves it came from this subscription. */
  clientState: string;
  expiresAt: Date;
  abortSignal?: AbortSignal;
}

/**
 * The subscriptions of a receiving profile whose transport pushes (receive.push): created for the
 * profile's folder, renewed before they expire. Optional ability of a receive transport.
 */
export interface MailboxSubscriptions {
  /** The longest a subscription may live, in minutes, as the provider allows it. */
  readonly maxLifetimeMinutes: number;
  subscribe(request: SubscribeRequest): Promise<MailSubscription>;
  /** The subscription with its new expiry; undefined when the provider no longer has it (expired, removed). */
  renew(id: string, expiresAt: Date, options?: { abortSignal?: AbortSignal }): Promise<MailSubscription | undefined>;
}
