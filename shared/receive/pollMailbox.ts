import { setMaxListeners } from 'node:events';
import type { Profile } from '../config/profiles.js';
import { MailError, isAuthFailure, isMailError } from '../errors.js';
import { withAuthRetry } from '../identity/tokenProvider.js';
import { unparseableIdHash } from '../mail/messageIds.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import { parseMessage, type AttachmentSink, type ParseContext } from '../mail/parse.js';
import type { MailRuntime } from '../runtime.js';
import type { CursorOwner } from '../state/cursorStore.js';
import type { ReceiveState } from '../state/index.js';
import type { MailboxLease } from '../state/mailboxLease.js';
import type { FetchedMessage, MailboxSession, ReaderCursor } from '../transports/types.js';
import { deliverWindow, type Outcome } from './deliverWindow.js';
import { planWindow, type Parsed, type Planned } from './planWindow.js';
import { describeFailure, type PollError } from './pollError.js';
import { settleBounded, settledPrefix } from './settleBounded.js';
import { SourceCopy } from './sourceCopy.js';

export type ReceivingProfile = Profile & { receive: NonNullable<Profile['receive']> };

export interface PollResult {
  profile: string;
  /**
   * completed: every new message (up to the batch size) was handled; leased: another worker
   * is polling this mailbox, nothing was done; failed: stopped at an error, the cursor kept at
   * the last acknowledged message; aborted: the deadline or a lost lease stopped it the same way.
   */
  status: 'completed' | 'leased' | 'failed' | 'aborted';
  /** Acknowledged by the sink. */
  delivered: number;
  /** Passed over by the profile's filters. */
  filtered: number;
  /** Already delivered before (dedupe table): a resync or a cursor write lost in a crash. */
  duplicates: number;
  /** Unparseable, over `receive.filters.maxSizeBytes`, or refused by the sink with a 4xx: stored in mail-deadletter, not retried. */
  deadLettered: number;
  /** Of those, the messages over `receive.filters.maxSizeBytes` (each also logged as a warning with its size and the limit). */
  oversized: number;
  /** The stored cursor was discarded (changed UIDVALIDITY, expired delta token, an unreadable row). */
  resynced: boolean;
  /** The cursor stored at the end of this poll. */
  cursor?: ReaderCursor;
  error?: PollError;
  /**
   * What failed while the poll wound up, next to `error` (why it stopped): the cursor write
   * after a failure (the stored cursor is older than what was acknowledged; the dedupe table
   * covers the gap) or closing the session (POP3: QUIT did not commit the deletions; the next
   * poll meets those messages again as duplicates and deletes them then).
   */
  cleanupErrors?: PollError[];
  durationMs: number;
}

export type { PollError } from './pollError.js';

export interface PollOptions {
  /** Stops the poll between messages; what was acknowledged so far is kept. */
  abortSignal?: AbortSignal;
}

/**
 * Messages are handled in windows: a window's dedupe lookups are a few table queries and its
 * records one transaction, where one request each way per message was most of a poll's time
 * (bench/poll). The cursor is written after each window, never past a message the sink has
 * not acknowledged; every delivery is recorded in the dedupe table before that, so a crash
 * before a cursor write makes the next poll skip, not redeliver.
 */
const WINDOW = 50;

/** Messages parsed at once, and deliveries in flight at once to a sink that keeps no order. */
const CONCURRENCY = 8;

/**
 * A message over this size, or of a size the reader does not know (Graph), is parsed with no
 * other in flight: it may stream attachments to blob, and memory stays that of one such message.
 */
const LARGE_MESSAGE_BYTES = 1024 * 1024;

/**
 * The time the cursor write after a failure, and the lease release, get. They run when the
 * poll's own signal may have fired already, and storage that does not answer must not hold the
 * invocation until the host kills it: a cursor not written is only older, a lease not released lapses.
 */
const CLEANUP_TIMEOUT_MS = 5_000;

/** The profiles that receive mail: one poll each. */
export function receivingProfiles(runtime: MailRuntime): ReceivingProfile[] {
  return [...runtime.profiles.profiles.values()].filter(isReceiving);
}

function isReceiving(profile: Profile): profile is ReceivingProfile {
  return profile.receive !== undefined;
}

/**
 * One poll of one mailbox: lease, read since the cursor, parse, dedupe, filter, deliver,
 * afterFetch, advance. At-least-once: a message is acknowledged by the sink before anything
 * marks it done, so a crash in between redelivers it with the same stable `id`.
 */
export async function pollMailbox(runtime: MailRuntime, profileName: string, options: PollOptions = {}): Promise<PollResult> {
  const profile = runtime.profile(profileName);
  if (!isReceiving(profile)) {
    throw new MailError('EINPUT', `profile "${profile.name}" has no receive section`, {
      field: 'profile',
      profile: profile.name,
      hint: `Add profiles.${profile.name}.receive to poll this mailbox.`,
    });
  }
  const poll = new MailboxPoll(runtime, profile, runtime.state.receive);
  const telemetry = runtime.telemetry;
  const attributes = { 'mail.profile': profile.name, 'mail.transport': profile.receive.via };
  const result = await telemetry.span('mail.poll', attributes, async (span) => {
    const polled = await poll.run(options.abortSignal);
    span.set({
      'mail.outcome': polled.status,
      'mail.poll.delivered': polled.delivered,
      'mail.poll.dead_lettered': polled.deadLettered,
      'mail.poll.duplicates': polled.duplicates,
      'mail.poll.filtered': polled.filtered,
      ...(polled.error && { 'error.type': polled.error.code }),
    });
    return polled;
  });
  if (result.delivered > 0) telemetry.count('mail.delivered', attributes, result.delivered);
  if (result.deadLettered > 0) telemetry.count('mail.dead_lettered', attributes, result.deadLettered);
  if (result.duplicates > 0) telemetry.count('mail.duplicates', attributes, result.duplicates);
  const level = result.status === 'failed' ? 'error' : 'info';
  runtime.logger[level]({
    operation: 'poll',
    profile: profile.name,
    outcome: result.status === 'failed' ? 'error' : result.status === 'leased' ? 'skipped' : 'ok',
    status: result.status,
    via: profile.receive.via,
    delivered: result.delivered,
    filtered: result.filtered,
    duplicates: result.duplicates,
    deadLettered: result.deadLettered,
    resynced: result.resynced,
    durationMs: result.durationMs,
    ...(result.error && { code: result.error.code, error: result.error.message }),
    ...(result.cleanupErrors && { cleanupCodes: result.cleanupErrors.map((e) => e.code) }),
  });
  return result;
}

/** A window as read: the messages parsed up to the first failure (any but EPARSE), that failure, and whether the reader has no more. */
interface ReadWindow {
  parsed: Parsed[];
  failure?: { error: unknown };
  last: boolean;
}

const EMPTY_WINDOW: ReadWindow = { parsed: [], last: true };

const COUNTED_AS = {
  delivered: 'delivered',
  refused: 'deadLettered',
  deadLettered: 'deadLettered',
  duplicate: 'duplicates',
  filtered: 'filtered',
} as const satisfies Record<Outcome, keyof PollResult>;

class MailboxPoll {
  private readonly started = Date.now();
  private readonly owner: CursorOwner;
  private readonly counts = { delivered: 0, filtered: 0, duplicates: 0, deadLettered: 0, oversized: 0 };
  private readonly cleanupErrors: PollError[] = [];
  private etag?: string;
  private stored?: ReaderCursor;
  private pending?: ReaderCursor;
  private resynced = false;
  private cursorDiscarded = false;

  constructor(
    private readonly runtime: MailRuntime,
    private readonly profile: ReceivingProfile,
    private readonly state: ReceiveState,
  ) {
    this.owner = { profile: profile.name, mailbox: profile.mailbox, via: profile.receive.via, folder: profile.receive.folder };
  }

  async run(abortSignal: AbortSignal | undefined): Promise<PollResult> {
    let lease: MailboxLease | undefined;
    try {
      lease = await this.state.leases.acquire(this.profile.mailbox, { abortSignal });
    } catch (error) {
      return this.result('failed', error);
    }
    if (!lease) return this.result('leased');
    const signal = abortSignal ? AbortSignal.any([abortSignal, lease.signal]) : lease.signal;
    // Parses of one window and deliveries of another are in flight together, each listening
    // for the abort (a stream pipeline, an SDK request): more than Node's default of 10.
    setMaxListeners(4 * CONCURRENCY + 10, signal);
    let session: MailboxSession | undefined;
    let status: 'completed' | 'failed' | 'aborted';
    let failure: unknown;
    try {
      const read = await this.state.cursors.read(this.owner, { abortSignal: signal });
      this.etag = read.etag;
      this.stored = read.cursor;
      if (read.unreadable !== undefined) {
        this.cursorDiscarded = true;
        this.runtime.logger.warn({ operation: 'poll.cursor', profile: this.profile.name, outcome: 'error', code: 'ESTATE', error: `the stored cursor is unreadable (${read.unreadable}): reading the folder from the start; the dedupe table keeps anything from being delivered twice` });
      }
      const started = await withAuthRetry(this.runtime.tokens(this.profile), () => this.openAndRead(read.cursor, signal));
      session = started.session;
      const open = session;
      const { messages } = started;
      // The next window is read and parsed while this one is delivered: one waits on the
      // reader and our CPU, the other on the sink and the state tables.
      let ahead = Promise.resolve(started.first);
      for (;;) {
        const current = await ahead;
        this.resynced = open.resynced;
        if (current.parsed.length === 0 && current.failure === undefined) break;
        ahead = current.last ? Promise.resolve(EMPTY_WINDOW) : this.readWindow(messages, signal);
        try {
          await this.handleWindow(open, current, signal);
        } catch (error) {
          // Nothing of the next window is acted on; it is only let finish before the session closes.
          await ahead;
          throw error;
        }
        await this.writeCursor(signal);
        if (current.last) break;
      }
      this.resynced = open.resynced;
      this.pending = open.finalCursor() ?? this.pending;
      await this.writeCursor(signal);
      status = 'completed';
    } catch (error) {
      // What was acknowledged before the failure is kept; the failed message comes again. A
      // cursor that cannot be written now is simply older: the dedupe table covers the gap.
      await this.writeCursor(AbortSignal.timeout(CLEANUP_TIMEOUT_MS)).catch((writeError: unknown) => this.cleanupFailed('poll.cursor', writeError));
      status = signal.aborted ? 'aborted' : 'failed';
      failure = signal.aborted ? (isMailError(signal.reason) ? signal.reason : undefined) : error;
    } finally {
      await session?.close().catch((error: unknown) => this.cleanupFailed('poll.close', error));
      await lease.release({ abortSignal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS) });
    }
    return this.result(status, failure);
  }

  /**
   * Opens a session and reads the first window. A refused token shows either at open (IMAP and
   * POP3 log in there) or at the first request of the round (Graph asks nothing at open, so an
   * idle poll is one delta request): in both cases nothing was read, the session is closed and
   * the failure thrown, so that withAuthRetry renews the token and tries once more.
   */
  private async openAndRead(cursor: ReaderCursor | undefined, signal: AbortSignal): Promise<{ session: MailboxSession; messages: AsyncIterator<FetchedMessage>; first: ReadWindow }> {
    const session = await this.runtime.reader(this.profile).open({ abortSignal: signal });
    const messages = session.messages(cursor, { limit: this.profile.receive.batchSize, abortSignal: signal })[Symbol.asyncIterator]();
    const first = await this.readWindow(messages, signal);
    if (first.parsed.length === 0 && first.failure !== undefined && isAuthFailure(first.failure.error)) {
      await session.close().catch((error: unknown) => this.cleanupFailed('poll.close', error));
      throw first.failure.error;
    }
    return { session, messages, first };
  }

  private cleanupFailed(operation: string, error: unknown): void {
    const described = describeFailure(error);
    this.cleanupErrors.push(described);
    this.runtime.logger.warn({ operation, profile: this.profile.name, outcome: 'error', code: described.code, error: described.message });
  }

  /**
   * Up to WINDOW messages from the reader, parsed side by side (a large or unsized one alone).
   * It never rejects: a failure is reported with what came before it, which is still handled.
   */
  private async readWindow(messages: AsyncIterator<FetchedMessage>, signal: AbortSignal): Promise<ReadWindow> {
    const window: FetchedMessage[] = [];
    let failure: { error: unknown } | undefined;
    let last = false;
    try {
      while (window.length < WINDOW && !last) {
        signal.throwIfAborted();
        const next = await messages.next();
        if (next.done) last = true;
        else window.push(next.value);
      }
    } catch (error) {
      failure = { error };
    }
    const parses = settledPrefix(await settleBounded(window, { limit: CONCURRENCY, alone: (f) => f.size === undefined || f.size > LARGE_MESSAGE_BYTES }, (fetched) => this.parse(fetched, signal)));
    failure = parses.failure ?? failure;
    return { parsed: parses.values, ...(failure && { failure }), last: last || failure !== undefined };
  }

  /**
   * Parse, dedupe, filter, deliver, record, afterFetch, in that order for each message, with
   * the slow steps shared across the window: parses ran side by side (while the window before
   * was delivered), the dedupe lookup is one query set (planWindow), and deliverWindow batches
   * the records and acknowledges the unbroken run. Kept sources of unparseable messages are
   * dropped once the window is done, whatever happened.
   */
  private async handleWindow(session: MailboxSession, window: ReadWindow, signal: AbortSignal): Promise<void> {
    try {
      const parsed = window.parsed;
      const recorded = parsed.length === 0 ? new Set<string>() : await this.state.dedupe.recorded(this.profile.name, parsed.map((p) => p.id), { abortSignal: signal });
      const plans = planWindow(parsed, { recorded, ...(this.profile.receive.filters && { filters: this.profile.receive.filters }) });
      const outcome = await deliverWindow(plans, { profile: this.profile, sink: this.runtime.sink(this.profile), state: this.state, session, concurrency: CONCURRENCY, signal, complete: (p) => this.storeAttachments(p, signal), telemetry: this.runtime.telemetry, ...(this.profile.receive.retainDays > 0 && { retain: (m) => this.retain(m, signal) }) });
      this.pending = outcome.cursor ?? this.pending;
      for (const { plan, outcome: result } of outcome.counted) this.count(plan, result);
      const failed = outcome.failure ?? window.failure;
      if (failed !== undefined) throw failed.error;
    } finally {
      await Promise.all(window.parsed.map((p) => p.source?.dispose()));
    }
  }

  /**
   * Parses one message from its source, opened once: the bytes are copied on their way to the
   * parser, so an unparseable message gets its id and its dead-letter from the copy. Attachments
   * that would go to blob storage are only counted here, not stored: whether the message is
   * delivered at all is known after the dedupe lookup and the filters, so a duplicate or a
   * filtered message never uploads a blob. Such a message keeps its copy, and storeAttachments
   * parses it again from there once it is to be delivered.
   */
  private async parse(fetched: FetchedMessage, signal: AbortSignal): Promise<Parsed> {
    const started = Date.now();
    const copy = new SourceCopy(unparseableIdHash(this.profile), { memoryBytes: LARGE_MESSAGE_BYTES });
    let deferred = 0;
    const countOnly: AttachmentSink = async (attachment, content) => {
      deferred++;
      for await (const chunk of content) void chunk;
      return { container: '', name: `${attachment.messageKey}/${attachment.index}` };
    };
    try {
      const message = await parseMessage(copy.tap(await fetched.openSource({ abortSignal: signal })), this.parseContext(fetched, countOnly, signal));
      // Over the size limit: dead-lettered from the copy (memory up to LARGE_MESSAGE_BYTES, a temporary file past it), never delivered.
      const limit = this.profile.receive.filters?.maxSizeBytes;
      const size = Math.max(fetched.size ?? 0, message.size);
      if (limit !== undefined && size > limit) return { fetched, started, id: message.id, message, source: copy, oversized: { size, limit } };
      if (deferred > 0) return { fetched, started, id: message.id, message, source: copy, attachmentsDeferred: true };
      await copy.dispose();
      return { fetched, started, id: message.id, message };
    } catch (error) {
      if (!isMailError(error) || error.code !== 'EPARSE') {
        await copy.dispose();
        throw error;
      }
      // The parser may have stopped early; the id and the dead-letter are of the whole source.
      await copy.complete().catch(async (sourceError: unknown) => {
        await copy.dispose();
        throw sourceError;
      });
      return { fetched, started, id: copy.digest(), parseError: error, source: copy };
    }
  }

  private parseContext(fetched: FetchedMessage, attachmentSink: AttachmentSink, signal: AbortSignal): ParseContext {
    return {
      profile: this.profile,
      via: this.runtime.reader(this.profile).via,
      providerId: fetched.providerId,
      ...(fetched.receivedAt && { receivedAt: fetched.receivedAt }),
      attachmentSink,
      maxBlobs: this.profile.receive.maxAttachmentBlobs,
      abortSignal: signal,
    };
  }

  /** The message about to be delivered, parsed again from its copy with its large attachments stored (at most maxAttachmentBlobs). */
  private async storeAttachments(p: Planned, signal: AbortSignal): Promise<DeliveredMessage> {
    // deliverWindow asks only for a parsed message whose attachments were deferred, which keeps its copy.
    if (p.source === undefined || p.message === undefined) throw new MailError('ESTATE', `message ${p.fetched.providerId} has no kept copy to store its attachments from`, { profile: this.profile.name, hint: 'This is a bug: please report it.' });
    const message = await parseMessage(await p.source.open(), this.parseContext(p.fetched, this.attachmentSink(signal), signal));
    if (message.id !== p.id) {
      throw new MailError('ESTATE', `message ${p.fetched.providerId} parsed to another id from its kept copy`, { profile: this.profile.name, hint: 'This is a bug: please report it with the message source.' });
    }
    return message;
  }

  private count(p: Planned, result: Outcome): void {
    this.counts[COUNTED_AS[result]]++;
    if (p.oversized && result === 'deadLettered') {
      this.counts.oversized++;
      this.runtime.logger.warn({ operation: 'poll.oversized', profile: this.profile.name, providerId: p.fetched.providerId, outcome: 'error', code: 'ETOO_LARGE', size: p.oversized.size, limit: p.oversized.limit, hint: `Kept with its source in mail-deadletter, not delivered: raise profiles.${this.profile.name}.receive.filters.maxSizeBytes to deliver messages this large.` });
    }
    this.runtime.logger.info({ operation: 'poll.message', profile: this.profile.name, id: p.message?.id, providerId: p.fetched.providerId, outcome: result === 'delivered' ? 'ok' : 'skipped', result, reason: p.reason, durationMs: Date.now() - p.started });
  }

  /**
   * Large attachments are streamed to mail-payloads, named after their message and position, so
   * that parsing a message again (a redelivery, a duplicate after a resync) leaves no orphan
   * blob. They are stored as application/octet-stream, so a blob URL handed on is never rendered
   * as the HTML or SVG a sender labelled it; the sender's type is kept as metadata.
   */
  private attachmentSink(signal: AbortSignal): AttachmentSink {
    return (attachment, content) =>
      this.state.payloads.putAttachment(`${this.profile.name}/attachments/${attachment.messageKey}/${attachment.index}`, content, { senderContentType: attachment.contentType }, { abortSignal: signal });
  }

  /**
   * The copy POST /api/profiles/{name}/redeliver reads. The message is delivered already: a copy
   * that cannot be stored costs only its redelivery, so it is logged, never a failed poll.
   */
  private async retain(message: DeliveredMessage, signal: AbortSignal): Promise<void> {
    try {
      await this.state.retained.put(message, { abortSignal: signal });
    } catch (error) {
      const described = describeFailure(error);
      this.runtime.logger.warn({ operation: 'poll.retain', profile: this.profile.name, id: message.id, outcome: 'error', code: described.code, error: described.message, hint: 'The message was delivered; only its redelivery on demand will not find it.' });
    }
  }

  private async writeCursor(signal: AbortSignal | undefined): Promise<void> {
    if (this.pending === undefined || JSON.stringify(this.pending) === JSON.stringify(this.stored)) return;
    this.etag = await this.state.cursors.write(this.owner, this.pending, this.etag, { abortSignal: signal });
    this.stored = this.pending;
  }

  private result(status: PollResult['status'], error?: unknown): PollResult {
    return {
      profile: this.profile.name,
      status,
      ...this.counts,
      resynced: this.resynced || this.cursorDiscarded,
      ...(this.stored !== undefined && { cursor: this.stored }),
      ...(error !== undefined && { error: describeFailure(error) }),
      ...(this.cleanupErrors.length > 0 && { cleanupErrors: [...this.cleanupErrors] }),
      durationMs: Date.now() - this.started,
    };
  }
}
