import { randomUUID } from 'node:crypto';
import type { Profile } from '../config/profiles.js';
import { MailError, isMailError, type ErrorCode } from '../errors.js';
import { withAuthRetry } from '../identity/tokenProvider.js';
import { matchesFilters } from '../mail/filters.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import { parseMessage, type AttachmentSink } from '../mail/parse.js';
import { redact } from '../redact.js';
import type { MailRuntime } from '../runtime.js';
import { createSink } from '../sinks/index.js';
import type { MessageSink } from '../sinks/types.js';
import { receiveState, type ReceiveState } from '../state/index.js';
import type { CursorOwner } from '../state/cursorStore.js';
import type { MailboxLease } from '../state/mailboxLease.js';
import { createReader } from '../transports/index.js';
import type { FetchedMessage, MailboxReader, MailboxSession, ReaderCursor } from '../transports/types.js';

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
  /** Unparseable, or refused by the sink with a 4xx: stored in mail-deadletter, not retried. */
  deadLettered: number;
  /** The reader had to discard the stored cursor (changed UIDVALIDITY, expired delta token). */
  resynced: boolean;
  /** The cursor stored at the end of this poll. */
  cursor?: ReaderCursor;
  error?: PollError;
  durationMs: number;
}

/** Why a poll stopped, safe to show: redacted, no stack. */
export interface PollError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export interface PollOptions {
  /** Stops the poll between messages; what was acknowledged so far is kept. */
  abortSignal?: AbortSignal;
}

/**
 * The cursor is written after every CURSOR_WRITE_EVERY handled messages and at the end,
 * never before the sink acknowledged them. Every delivery is also recorded in the dedupe
 * table first, so a crash before a cursor write makes the next poll skip, not redeliver.
 */
const CURSOR_WRITE_EVERY = 25;

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
  const poll = new MailboxPoll(runtime, profile, receiveState(runtime.env));
  const result = await poll.run(options.abortSignal);
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
  });
  return result;
}

/** Readers and sinks hold SDK clients and connections: one of each per profile and runtime. */
const perRuntime = new WeakMap<MailRuntime, Map<string, { reader: MailboxReader; sink: MessageSink }>>();

function transportsFor(runtime: MailRuntime, profile: ReceivingProfile): { reader: MailboxReader; sink: MessageSink } {
  let perProfile = perRuntime.get(runtime);
  if (!perProfile) {
    perProfile = new Map();
    perRuntime.set(runtime, perProfile);
  }
  let transports = perProfile.get(profile.name);
  if (!transports) {
    transports = { reader: createReader(profile, { tokens: runtime.tokens(profile), logger: runtime.logger }), sink: createSink(runtime, profile) };
    perProfile.set(profile.name, transports);
  }
  return transports;
}

class MailboxPoll {
  private readonly started = Date.now();
  private readonly owner: CursorOwner;
  private readonly counts = { delivered: 0, filtered: 0, duplicates: 0, deadLettered: 0 };
  private etag?: string;
  private stored?: ReaderCursor;
  private pending?: ReaderCursor;
  private unwritten = 0;
  private resynced = false;

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
    let session: MailboxSession | undefined;
    try {
      const read = await this.state.cursors.read(this.owner, { abortSignal: signal });
      this.etag = read.etag;
      this.stored = read.cursor;
      const { reader } = transportsFor(this.runtime, this.profile);
      session = await withAuthRetry(this.runtime.tokens(this.profile), () => reader.open({ abortSignal: signal }));
      const open = session;
      for await (const fetched of open.messages(read.cursor, { limit: this.profile.receive.batchSize, abortSignal: signal })) {
        this.resynced = open.resynced;
        signal.throwIfAborted();
        await this.handle(open, fetched, signal);
        this.pending = fetched.cursorAfter ?? this.pending;
        if (++this.unwritten >= CURSOR_WRITE_EVERY) await this.writeCursor(signal);
      }
      this.resynced = open.resynced;
      this.pending = open.finalCursor() ?? this.pending;
      await this.writeCursor(signal);
      return this.result('completed');
    } catch (error) {
      // What was acknowledged before the failure is kept; the failed message comes again. A
      // cursor that cannot be written now is simply older: the dedupe table covers the gap.
      await this.writeCursor(undefined).catch((writeError: unknown) =>
        this.runtime.logger.warn({ operation: 'poll.cursor', profile: this.profile.name, outcome: 'error', ...describe(writeError) }));
      if (signal.aborted) return this.result('aborted', isMailError(signal.reason) ? signal.reason : undefined);
      return this.result('failed', error);
    } finally {
      await session?.close().catch((error: unknown) => this.runtime.logger.warn({ operation: 'poll.close', profile: this.profile.name, outcome: 'error', error: describe(error).message }));
      await lease.release();
    }
  }

  private async handle(session: MailboxSession, fetched: FetchedMessage, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    const log = (outcome: 'ok' | 'skipped', result: string, id?: string, reason?: string) =>
      this.runtime.logger.info({ operation: 'poll.message', profile: this.profile.name, id, providerId: fetched.providerId, outcome, result, reason, durationMs: Date.now() - started });

    let message: DeliveredMessage;
    try {
      message = await parseMessage(await fetched.openSource({ abortSignal: signal }), {
        profile: this.profile,
        via: this.profile.receive.via,
        providerId: fetched.providerId,
        ...(fetched.receivedAt && { receivedAt: fetched.receivedAt }),
        attachmentSink: this.attachmentSink(signal),
        abortSignal: signal,
      });
    } catch (error) {
      if (!isMailError(error) || error.code !== 'EPARSE') throw error;
      // The source is read again: the parser consumed the first stream.
      await this.state.deadLetters.put({ profile: this.profile.name, providerId: fetched.providerId, error: describe(error), source: await fetched.openSource({ abortSignal: signal }) }, { abortSignal: signal });
      this.counts.deadLettered++;
      return log('skipped', 'deadLettered');
    }

    if (await this.state.dedupe.has(this.profile.name, message.id, { abortSignal: signal })) {
      // Finishes what a crashed poll may have left undone after delivering it.
      await session.applyAfterFetch(fetched, this.profile.receive.afterFetch, { abortSignal: signal });
      this.counts.duplicates++;
      return log('skipped', 'duplicate', message.id);
    }
    const filters = this.profile.receive.filters;
    const verdict = filters === undefined ? undefined : matchesFilters(message, { ...(fetched.seen !== undefined && { seen: fetched.seen }), ...(fetched.size !== undefined && { size: fetched.size }) }, filters);
    if (verdict && !verdict.pass) {
      this.counts.filtered++;
      return log('skipped', 'filtered', message.id, verdict.reason);
    }
    try {
      await transportsFor(this.runtime, this.profile).sink.deliver(message, { abortSignal: signal });
    } catch (error) {
      if (!isMailError(error) || error.code !== 'ESINK_REJECTED') throw error;
      await this.state.deadLetters.put({ profile: this.profile.name, providerId: fetched.providerId, error: describe(error), message }, { abortSignal: signal });
      await this.state.dedupe.mark(this.profile.name, message.id, { providerId: fetched.providerId, outcome: 'deadLettered' }, { abortSignal: signal });
      this.counts.deadLettered++;
      return log('skipped', 'refused', message.id);
    }
    await this.state.dedupe.mark(this.profile.name, message.id, { providerId: fetched.providerId, outcome: 'delivered' }, { abortSignal: signal });
    await session.applyAfterFetch(fetched, this.profile.receive.afterFetch, { abortSignal: signal });
    this.counts.delivered++;
    return log('ok', 'delivered', message.id);
  }

  /** Large attachments are streamed to mail-payloads under a fresh name; the JSON carries the reference. */
  private attachmentSink(signal: AbortSignal): AttachmentSink {
    return (attachment, content) =>
      this.state.payloads.putStream(`${this.profile.name}/attachments/${randomUUID()}`, content, attachment.contentType, { abortSignal: signal });
  }

  private async writeCursor(signal: AbortSignal | undefined): Promise<void> {
    this.unwritten = 0;
    if (this.pending === undefined || JSON.stringify(this.pending) === JSON.stringify(this.stored)) return;
    this.etag = await this.state.cursors.write(this.owner, this.pending, this.etag, { abortSignal: signal });
    this.stored = this.pending;
  }

  private result(status: PollResult['status'], error?: unknown): PollResult {
    return {
      profile: this.profile.name,
      status,
      ...this.counts,
      resynced: this.resynced,
      ...(this.stored !== undefined && { cursor: this.stored }),
      ...(error !== undefined && { error: describe(error) }),
      durationMs: Date.now() - this.started,
    };
  }
}

function describe(error: unknown): PollError {
  if (isMailError(error)) return { code: error.code, message: redact(error.message), ...(error.hint && { hint: redact(error.hint) }) };
  return { code: 'EPROVIDER', message: redact(error instanceof Error ? error.message : String(error)) };
}
