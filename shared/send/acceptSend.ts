import { SendBacklog } from './backlog.js';
import { createHash } from 'node:crypto';
import type { Caller } from '../config/profiles.js';
import { ERROR_CODES, MailError, asMailError, isMailError, type ErrorCode } from '../errors.js';
import type { MailRuntime } from '../runtime.js';
import type { SendState } from '../state/sendState.js';
import type { IdempotencyRecord } from '../state/idempotencyStore.js';
import { fitsInStatusRow, type SendError, type SendRecord, type SendStatus, type StoredSendRecord } from '../state/sendStatusStore.js';
import { settleUnknownAttempt } from './reconcile.js';
import { isTransient } from './retryPolicy.js';
import { deliverMessage, prepareMessage, type PreparedMessage } from './sendMail.js';
import { sendErrorOf } from './sendStatus.js';
import { toStoredMessage } from './storedMessage.js';
import { stripEnds } from '../text.js';

export const SEND_MODES = ['sync', 'queued'] as const;
export type SendMode = (typeof SEND_MODES)[number];

export interface AcceptSendOptions {
  /** Our id for this send (the invocation id). */
  id: string;
  /** Who is sending, when callers are configured. */
  caller?: Caller;
  mode: SendMode;
  /** The request's Idempotency-Key, checked with idempotencyKeyOf. */
  idempotencyKey?: string;
  abortSignal?: AbortSignal;
}

/** What POST /api/send answers when it does not answer with a problem. */
export type SendAnswer =
  | { status: 200; body: { id: string; status: 'sent'; messageId?: string }; replayed: boolean }
  | { status: 202; body: { id: string; status: SendStatus }; location: string; replayed: boolean };

/**
 * The mode of one request: `?mode=` first, then `Prefer: respond-async` (RFC 7240), then the
 * app setting SEND_MODE (default sync, which is how the API has always answered).
 */
export function sendModeOf(input: { query: string | null; prefer: string | null; setting: SendMode }): SendMode {
  if (input.query !== null) {
    const mode = SEND_MODES.find((m) => m === input.query);
    if (mode !== undefined) return mode;
    throw new MailError('EINPUT', `mode must be "sync" or "queued", not "${input.query.slice(0, 40)}"`, { field: 'mode', hint: 'Use ?mode=queued to queue the message, or leave mode out.' });
  }
  // Prefer is a list of preferences, each possibly with parameters: respond-async, wait=10
  const preferences = (input.prefer ?? '').split(',').map((p) => p.split(';')[0]!.trim().toLowerCase());
  if (preferences.includes('respond-async')) return 'queued';
  return input.setting;
}

/**
 * The Idempotency-Key header: 1 to 255 printable ASCII characters, as Stripe takes it, or the
 * quoted form of the IETF draft (draft-ietf-httpapi-idempotency-key-header), whose quotes are
 * not part of the key.
 */
export function idempotencyKeyOf(header: string | null): string | undefined {
  if (header === null) return undefined;
  // Only the optional whitespace of RFC 9110 (SP, HTAB): String.trim also takes \v, \f and
  // U+00A0, which would make "\fkey" the key "key" instead of refusing it.
  const trimmed = stripEnds(header, ' \t');
  const key = /^".*"$/.test(trimmed) && trimmed.length >= 2 ? trimmed.slice(1, -1) : trimmed;
  if (key.length === 0 || key.length > 255 || !/^[\x20-\x7e]+$/.test(key)) {
    throw new MailError('EINPUT', 'Idempotency-Key must be 1 to 255 printable ASCII characters', {
      field: 'idempotency-key',
      hint: 'Use a random value such as a UUID, one per message, and the same one when you repeat a request.',
    });
  }
  return key;
}

/**
 * POST /api/send after the body was parsed: validates the message completely (a 4xx problem
 * leaves nothing stored and nothing sent), applies the idempotency key, then sends now or
 * stores and queues. A 202 is answered only once the message is stored (in its status row, or
 * the outbox blob when it is large), the status row exists and the queue holds its id.
 */
export async function acceptSend(runtime: MailRuntime, body: Record<string, unknown>, options: AcceptSendOptions): Promise<SendAnswer> {
  const prepared = prepareMessage(runtime, body, { ...(options.caller && { caller: options.caller }) });
  const { id, idempotencyKey: key } = options;
  if (options.mode === 'sync' && key === undefined) {
    const outcome = await deliverMessage(runtime, prepared, { id, abortSignal: options.abortSignal, mode: 'sync' });
    return { status: 200, body: { id, status: 'sent', messageId: outcome.messageId }, replayed: false };
  }
  const state = runtime.state.send;
  const profile = prepared.profile.name;
  let release = async (): Promise<void> => {};
  if (key !== undefined) {
    const requestHash = hashRequest(body);
    const claim = await state.idempotency.claim(profile, key, { id, requestHash }, { abortSignal: options.abortSignal });
    if (!claim.claimed) return replay(runtime, state, claim.record, requestHash, prepared, options.abortSignal);
    release = () =>
      state.idempotency.release(profile, key, claim.etag).catch((error: unknown) => {
        runtime.logger.warn({ operation: 'send.idempotency', profile, id, outcome: 'error', code: isMailError(error) ? error.code : 'ESTATE' });
      });
  }
  if (options.mode === 'queued') {
    try {
      // send.maxPending: a full backlog stores nothing (the key is released: the retry may go through).
      await runtime.once('sendBacklog', () => new SendBacklog(runtime)).admit(prepared.profile, { abortSignal: options.abortSignal });
      await enqueue(state, prepared, id, options.abortSignal);
    } catch (error) {
      await release();
      throw error;
    }
    runtime.logger.info({ operation: 'send.queue', profile, id, outcome: 'ok' });
    return { status: 202, body: { id, status: 'queued' }, location: statusLocation(id), replayed: false };
  }
  return sendRecorded(runtime, state, prepared, id, release, options.abortSignal);
}

export function statusLocation(id: string): string {
  return `/api/send/${encodeURIComponent(id)}`;
}

/**
 * The message (in the status row when it fits, else first in the outbox blob), then the status
 * row, then the queue message; what was written is removed again when a later write fails.
 */
async function enqueue(state: SendState, prepared: PreparedMessage, id: string, abortSignal: AbortSignal | undefined): Promise<void> {
  const now = new Date().toISOString();
  const document = JSON.stringify(toStoredMessage(id, prepared));
  const inRow = fitsInStatusRow(document);
  if (!inRow) await state.outbox.put(id, document, { abortSignal });
  try {
    await state.statuses.create({ id, profile: prepared.profile.name, ...(prepared.caller !== undefined && { caller: prepared.caller }), mode: 'queued', status: 'queued', attempts: 0, createdAt: now, updatedAt: now, ...(inRow && { payload: document }) }, { abortSignal });
    await state.queue.enqueue({ id }, { abortSignal });
  } catch (error) {
    await Promise.allSettled([state.statuses.remove(id), ...(inRow ? [] : [state.outbox.remove(id)])]);
    throw error;
  }
}

/**
 * A sync send with an idempotency key: its outcome is recorded so that a repeat answers the
 * same. A transient failure (throttled, unavailable) releases the key instead: nothing was
 * sent, and the client's retry with the same key should try again rather than replay a 429.
 * The row names the Message-ID and holds the send for SEND_SYNC_HOLD_SECONDS (the invocation's
 * lease): if this request dies, a repeat after the hold settles what became of it.
 */
async function sendRecorded(runtime: MailRuntime, state: SendState, prepared: PreparedMessage, id: string, release: () => Promise<void>, abortSignal: AbortSignal | undefined): Promise<SendAnswer> {
  const now = Date.now();
  const record: SendRecord = {
    id,
    profile: prepared.profile.name,
    ...(prepared.caller !== undefined && { caller: prepared.caller }),
    mode: 'sync',
    status: 'sending',
    attempts: 1,
    messageId: prepared.message.messageId,
    sendingUntil: new Date(now + syncHoldMs(runtime)).toISOString(),
    createdAt: new Date(now).toISOString(),
    updatedAt: new Date(now).toISOString(),
  };
  let etag: string;
  try {
    etag = await state.statuses.create(record, { abortSignal });
  } catch (error) {
    await release();
    throw error;
  }
  return attemptRecorded(runtime, state, prepared, { record, etag }, { release, abortSignal, replayed: false });
}

const syncHoldMs = (runtime: MailRuntime) => runtime.settings.sendSyncHoldSeconds * 1000;

/**
 * One recorded sync attempt. It gives up at half its hold, so that a repeat taking over after the
 * hold never runs beside it. An answer lost after the whole message went (outcomeUnknown) neither
 * fails the send nor releases the key: the row ends its hold at once, and a repeat settles it.
 */
async function attemptRecorded(runtime: MailRuntime, state: SendState, prepared: PreparedMessage, stored: StoredSendRecord, options: { release: () => Promise<void>; abortSignal: AbortSignal | undefined; replayed: boolean }): Promise<SendAnswer> {
  const { record, etag } = stored;
  const { id } = record;
  const logStatusFailure = (error: unknown) => runtime.logger.error({ operation: 'send.status', profile: record.profile, id, outcome: 'error', code: isMailError(error) ? error.code : 'ESTATE' });
  const timeout = AbortSignal.timeout(syncHoldMs(runtime) / 2);
  const abortSignal = options.abortSignal ? AbortSignal.any([options.abortSignal, timeout]) : timeout;
  const settled = { sendingUntil: undefined, outcomeUnknown: undefined, updatedAt: new Date().toISOString() };
  try {
    const outcome = await deliverMessage(runtime, prepared, { id, abortSignal, mode: 'sync' });
    // The message is sent: that answer stands even when recording it failed.
    await state.statuses.replace({ ...record, ...settled, status: 'sent', messageId: outcome.messageId, via: outcome.via, lastError: undefined }, etag).catch(logStatusFailure);
    return { status: 200, body: { id, status: 'sent', messageId: outcome.messageId }, replayed: options.replayed };
  } catch (thrown) {
    // The attempt's own time limit, where a sender passes the abort on as it is: nothing was handed over.
    const error = timeout.aborted && !isMailError(thrown) ? attemptTimedOut(runtime, record, thrown) : thrown;
    const failure = asMailError(error);
    if (failure.outcomeUnknown) {
      await state.statuses.replace({ ...record, lastError: sendErrorOf(failure), outcomeUnknown: true, sendingUntil: new Date().toISOString(), updatedAt: new Date().toISOString() }, etag).catch(logStatusFailure);
      throw error;
    }
    await state.statuses.replace({ ...record, ...settled, status: 'failed', lastError: sendErrorOf(failure) }, etag).catch(logStatusFailure);
    if (isTransient(failure)) await options.release();
    throw error;
  }
}

function attemptTimedOut(runtime: MailRuntime, record: SendRecord, cause: unknown): MailError {
  const seconds = syncHoldMs(runtime) / 2000;
  return new MailError('ECONNECTION', `profile "${record.profile}": the send did not finish within ${seconds} s (half of SEND_SYNC_HOLD_SECONDS)`, {
    profile: record.profile,
    retryAfter: 30,
    cause,
    hint: 'The provider was too slow to answer; nothing was handed over. Send again (with the same Idempotency-Key).',
  });
}

async function replay(runtime: MailRuntime, state: SendState, held: IdempotencyRecord, requestHash: string, prepared: PreparedMessage, abortSignal: AbortSignal | undefined): Promise<SendAnswer> {
  const profile = prepared.profile.name;
  if (held.requestHash !== requestHash) {
    throw new MailError('EIDEMPOTENCY_MISMATCH', `this Idempotency-Key was used for a different request (send ${held.id})`, {
      field: 'idempotency-key',
      profile,
      hint: 'Use a new key for a new message; repeat a request only with exactly the same body.',
    });
  }
  const stored = await state.statuses.get(held.id);
  const record = stored?.record;
  if (record?.mode === 'queued') return { status: 202, body: { id: record.id, status: record.status }, location: statusLocation(record.id), replayed: true };
  if (record?.status === 'sent') return { status: 200, body: { id: record.id, status: 'sent', messageId: record.messageId }, replayed: true };
  if (record?.status === 'failed' && record.lastError) throw replayedError(record.lastError);
  if (record?.status === 'unknown') throw unknownError(record);
  if (stored && record?.status === 'sending' && holdEnds(runtime, record) <= Date.now()) return takeOver(runtime, state, stored, prepared, abortSignal);
  throw inProgress(held.id, profile);
}

/** When the sync attempt's hold ends; a row written before holds were kept ends its hold one hold after it was made. */
function holdEnds(runtime: MailRuntime, record: SendRecord): number {
  return record.sendingUntil !== undefined ? Date.parse(record.sendingUntil) : Date.parse(record.createdAt) + syncHoldMs(runtime);
}

/**
 * A repeat that finds the first request's attempt past its hold: that request died (or lost the
 * provider's answer), so what became of the message is unknown. The repeat takes the row over
 * (ETag-conditional: of two repeats one does), settles the attempt, and answers its outcome: sent
 * (200 with the first request's id and Message-ID), sent now with the same Message-ID when it was
 * not found (or send.unknownOutcome is "atLeastOnce"), or ESEND_UNKNOWN (at most once).
 */
async function takeOver(runtime: MailRuntime, state: SendState, stored: StoredSendRecord, prepared: PreparedMessage, abortSignal: AbortSignal | undefined): Promise<SendAnswer> {
  const now = Date.now();
  const held: SendRecord = { ...stored.record, outcomeUnknown: true, sendingUntil: new Date(now + syncHoldMs(runtime)).toISOString(), updatedAt: new Date(now).toISOString() };
  let etag: string;
  try {
    etag = await state.statuses.replace(held, stored.etag, { abortSignal });
  } catch (error) {
    if (isMailError(error) && error.code === 'ESTATE_CONFLICT') throw inProgress(held.id, held.profile);
    throw error;
  }
  const messageId = held.messageId;
  let settlement;
  try {
    settlement = messageId === undefined ? { reconciled: 'notChecked' as const, next: 'unknown' as const } : await settleUnknownAttempt(runtime, prepared.profile, messageId, { id: held.id, abortSignal });
  } catch (error) {
    // The lookup failed for now: the next repeat tries it again at once.
    await state.statuses.replace({ ...held, sendingUntil: new Date().toISOString() }, etag).catch(() => undefined);
    throw error;
  }
  const settled = { sendingUntil: undefined, outcomeUnknown: undefined, reconciled: settlement.reconciled, updatedAt: new Date().toISOString() };
  if (settlement.next === 'sent') {
    await state.statuses.replace({ ...held, ...settled, status: 'sent', lastError: undefined }, etag);
    return { status: 200, body: { id: held.id, status: 'sent', messageId }, replayed: true };
  }
  if (settlement.next === 'unknown') {
    const unknown: SendRecord = { ...held, ...settled, status: 'unknown' };
    await state.statuses.replace(unknown, etag);
    throw unknownError(unknown);
  }
  const again: SendRecord = { ...held, reconciled: settlement.reconciled, attempts: held.attempts + 1, updatedAt: new Date().toISOString() };
  const againEtag = await state.statuses.replace(again, etag);
  // The same message as the first request's, under its Message-ID, so a recipient can tell a repeat.
  const same: PreparedMessage = { ...prepared, message: { ...prepared.message, messageId: messageId! } };
  return attemptRecorded(runtime, state, same, { record: again, etag: againEtag }, { release: async () => {}, abortSignal, replayed: true });
}

function inProgress(id: string, profile: string): MailError {
  return new MailError('EIDEMPOTENCY_IN_PROGRESS', `the first request with this Idempotency-Key (send ${id}) is still being handled`, {
    field: 'idempotency-key',
    profile,
    retryAfter: 1,
    hint: 'Repeat the request in a moment: it will then answer with the first request\'s result.',
  });
}

/** ESEND_UNKNOWN for a sync send settled at most once: the answer every repeat gets. */
function unknownError(record: SendRecord): MailError {
  return new MailError('ESEND_UNKNOWN', `send ${record.id} (Message-ID ${record.messageId ?? 'not recorded'}): its request ended before the provider's answer, and whether the message went out could not be looked up`, {
    profile: record.profile,
    hint: 'It is not sent again (send.unknownOutcome "atMostOnce"). Check the recipient or the mailbox\'s Sent folder; to send it anyway, use a new Idempotency-Key.',
  });
}

/** The recorded error of a sync send, answered again with its code, status, detail and hint. */
function replayedError(recorded: SendError): MailError {
  const code = (recorded.code in ERROR_CODES ? recorded.code : 'EPROVIDER') as ErrorCode;
  return new MailError(code, recorded.detail, { hint: recorded.hint });
}

/** SHA-256 of the request body with object keys sorted, so that key order and whitespace do not make a repeat look different. */
export function hashRequest(body: unknown): string {
  return createHash('sha256').update(JSON.stringify(canonical(body))).digest('hex');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]));
  }
  return value;
}
