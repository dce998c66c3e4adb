import { z } from 'zod';
import { MailError, asMailError, isMailError } from '../errors.js';
import { errorDetail } from '../log.js';
import type { MailRuntime } from '../runtime.js';
import type { SendState } from '../state/sendState.js';
import { isSettled, type Reconciled, type SendRecord, type StoredSendRecord } from '../state/sendStatusStore.js';
import { MAX_PER_RUN_DELAY_SECONDS, SendsInFlight } from './backlog.js';
import { settleUnknownAttempt, type Settlement } from './reconcile.js';
import { isTransient, retryDelaySeconds } from './retryPolicy.js';
import { SHORT_PACE_WAIT_MS, checkQueuedMessage, deliverMessage, recipientCount, type SendOutcome } from './sendMail.js';
import { delay } from '../abort.js';
import type { Profile } from '../config/profiles.js';
import type { PaceDecision } from '../governor/index.js';
import { sendErrorOf } from './sendStatus.js';
import { fromStoredMessage } from './storedMessage.js';

const queueItemSchema = z.object({ id: z.string().min(1), pacedAt: z.number().optional() });

/** The pacer gave the message a later place in the mailbox's send rate: it waits on the queue until then. */
class Deferral {
  constructor(readonly at: number, readonly decision: PaceDecision, readonly profile: Profile) {}
}

/**
 * host.json `functionTimeout`: the host ends an invocation after it, so a send marked
 * `sending` longer ago than this has no live worker and may be taken over.
 */
export const SENDING_HOLD_SECONDS = 10 * 60;
/** One attempt gives up well inside the hold, so that a slow attempt never overlaps a takeover. */
const ATTEMPT_TIMEOUT_MS = 5 * 60 * 1000;
/**
 * host.json `extensions.queues.maxDequeueCount`: after this many failed deliveries the host
 * moves the message to `mail-send-poison`, so the last delivery records the failure first.
 */
export const HOST_MAX_DEQUEUE_COUNT = 5;

export type QueuedSendOutcome = 'sent' | 'retrying' | 'deferred' | 'failed' | 'unknown' | 'skipped';

export interface QueuedSendOptions {
  /** How many times the queue has delivered this message (the trigger's `dequeueCount`). */
  dequeueCount?: number;
  /** The queue message's own id (the trigger's `id`): a redelivery of the message a worker failed on takes its send over at once. */
  messageId?: string;
}

/**
 * Handles one `mail-send` queue item: sends the outbox entry once, whatever the number of
 * deliveries (the queue is at-least-once). Provider failures never escape: a transient one is
 * rescheduled on the queue after its back-off or Retry-After, a permanent one, or the last
 * allowed attempt, records the send as failed. Only a storage failure is thrown, for the host
 * to deliver the item again; on the host's last delivery the send is marked failed first, so
 * that nothing the host poisons stays `queued`.
 */
export async function processQueuedSend(runtime: MailRuntime, state: SendState, item: unknown, options: QueuedSendOptions = {}): Promise<QueuedSendOutcome> {
  const parsed = queueItemSchema.safeParse(item);
  if (!parsed.success) {
    runtime.logger.error({ operation: 'sendWorker', outcome: 'error', code: 'EINPUT', error: `not a send request: ${parsed.error.issues[0]?.message ?? 'invalid'}` });
    return 'skipped';
  }
  const { id, pacedAt } = parsed.data;
  try {
    return await claimAndSend(runtime, state, id, options.messageId, pacedAt);
  } catch (error) {
    if ((options.dequeueCount ?? 1) >= HOST_MAX_DEQUEUE_COUNT) await failAfterHostRetries(runtime, state, id, error);
    throw error;
  }
}

async function claimAndSend(runtime: MailRuntime, state: SendState, id: string, messageId: string | undefined, pacedAt: number | undefined): Promise<QueuedSendOutcome> {
  // A lost claim means another worker moved the row on: the next read shows what it did.
  for (let pass = 0; pass < 3; pass++) {
    const stored = await state.statuses.get(id);
    if (!stored) {
      runtime.logger.warn({ operation: 'sendWorker', id, outcome: 'skipped', reason: 'no such send' });
      return 'skipped';
    }
    const { record, etag } = stored;
    if (isSettled(record.status)) {
      runtime.logger.info({ operation: 'sendWorker', profile: record.profile, id, outcome: 'skipped', reason: `already ${record.status}` });
      return 'skipped';
    }
    const now = Date.now();
    const holdEnds = record.sendingUntil === undefined ? 0 : Date.parse(record.sendingUntil);
    const redelivered = messageId !== undefined && record.sendingBy === messageId;
    if (record.status === 'sending' && holdEnds > now && !redelivered) {
      // Another worker is sending it right now (this is another queue message for the same
      // send). Look again when its hold ends: if that worker died, this is what picks it up.
      await state.queue.enqueue({ id }, { delaySeconds: (holdEnds - now) / 1000 + 1 });
      runtime.logger.info({ operation: 'sendWorker', profile: record.profile, id, outcome: 'skipped', reason: 'sending elsewhere' });
      return 'skipped';
    }
    // send.maxPerRun: this instance already sends as many of this profile as it may; the send waits on the queue, unclaimed.
    const profile = runtime.profiles.profiles.get(record.profile);
    const inFlight = runtime.once('sendsInFlight', () => new SendsInFlight());
    if (profile && !inFlight.enter(profile)) {
      await state.queue.enqueue({ id, ...(pacedAt !== undefined && { pacedAt }) }, { delaySeconds: MAX_PER_RUN_DELAY_SECONDS });
      runtime.logger.info({ operation: 'sendWorker', profile: record.profile, id, outcome: 'skipped', reason: `send.maxPerRun (${profile.send?.maxPerRun}) in flight`, delaySeconds: MAX_PER_RUN_DELAY_SECONDS });
      return 'deferred';
    }
    try {
      return await claimOnce(runtime, state, stored, messageId, pacedAt);
    } catch (error) {
      if (error === LOST_CLAIM) continue;
      throw error;
    } finally {
      if (profile) inFlight.leave(profile);
    }
  }
  throw new MailError('ESTATE_CONFLICT', `send ${id} kept changing while it was claimed`, { hint: 'The queue delivers it again.' });
}

/** Thrown by claimOnce when another worker changed the row first: claimAndSend reads it again. */
const LOST_CLAIM = new Error('lost claim');

async function claimOnce(runtime: MailRuntime, state: SendState, stored: StoredSendRecord, messageId: string | undefined, pacedAt: number | undefined): Promise<QueuedSendOutcome> {
  const { record, etag } = stored;
  const now = Date.now();
  // Taking over a send still `sending` (its worker died, or this is the redelivery of the message
  // it failed on) or one whose last answer was lost: the provider may have the message already.
  const unsettled = record.status === 'sending' || record.outcomeUnknown === true;
  const claimed: SendRecord = {
    ...record,
    ...(unsettled && { outcomeUnknown: true }),
    status: 'sending',
    attempts: record.attempts + 1,
    updatedAt: new Date(now).toISOString(),
    sendingUntil: new Date(now + SENDING_HOLD_SECONDS * 1000).toISOString(),
    sendingBy: messageId,
    nextAttemptAt: undefined,
  };
  let claimedEtag: string;
  try {
    claimedEtag = await state.statuses.replace(claimed, etag);
  } catch (error) {
    if (isMailError(error) && error.code === 'ESTATE_CONFLICT') throw LOST_CLAIM;
    throw error;
  }
  return attempt(runtime, state, claimed, claimedEtag, pacedAt);
}

async function attempt(runtime: MailRuntime, state: SendState, record: SendRecord, etag: string, pacedAt: number | undefined): Promise<QueuedSendOutcome> {
  const { id } = record;
  const result = await sendOnce(runtime, state, record, pacedAt);
  if (result instanceof Deferral) {
    // Not an attempt: the message waits for its place, with that place on the queue item. The queue
    // counts visibility in whole seconds: it shows the message a little before its place, and the
    // worker waits out the rest, so that messages whose places fall in one second are not sent together late.
    const { nextVisibleOn } = await state.queue.enqueue({ id, pacedAt: result.at }, { delaySeconds: Math.max(0, Math.floor((result.at - Date.now()) / 1000) - 1) });
    await state.statuses
      .replace({ ...record, status: 'queued', attempts: record.attempts - 1, nextAttemptAt: nextVisibleOn.toISOString(), sendingUntil: undefined, sendingBy: undefined, updatedAt: new Date().toISOString() }, etag)
      .catch((error: unknown) => runtime.logger.warn({ operation: 'sendWorker', profile: record.profile, id, outcome: 'error', code: isMailError(error) ? error.code : 'ESTATE', reason: 'deferral not recorded' }));
    runtime.governor?.deferred(result.profile, result.decision, 'queued');
    runtime.logger.info({ operation: 'sendWorker', profile: record.profile, id, outcome: 'skipped', reason: `paced (${result.decision.limit ?? 'send_rate'})`, delaySeconds: Math.ceil(result.decision.waitMs / 1000) });
    return 'deferred';
  }
  if (result instanceof Settled) return recordSettled(runtime, state, { ...record, attempts: record.attempts - 1 }, result);
  if (!(result instanceof MailError)) {
    // Unconditional: the message went out, whatever else happened to the row meanwhile.
    await state.statuses.replace({ ...record, status: 'sent', messageId: result.messageId, via: result.via, reconciled: result.reconciled, outcomeUnknown: undefined, lastError: undefined, sendingUntil: undefined, sendingBy: undefined, updatedAt: new Date().toISOString() }, '*');
    await removePayload(runtime, state, record);
    return 'sent';
  }
  const failure = result;
  const maxAttempts = runtime.settings.sendMaxAttempts;
  const transient = isTransient(failure);
  if (failure.outcomeUnknown && !(transient && record.attempts < maxAttempts)) {
    // The last attempt lost its answer: settle it now rather than call it failed.
    const settled = await settleNow(runtime, state, record, failure);
    if (settled) return recordSettled(runtime, state, { ...record, lastError: sendErrorOf(failure) }, settled);
  }
  if (transient && record.attempts < maxAttempts) {
    const delaySeconds = retryDelaySeconds(record.attempts, failure.retryAfter, Math.random, runtime.settings.sendRetryBaseSeconds);
    // Queued before the row says so: a failure between the two leaves a retry that finds the
    // row `sending` past its hold and takes over, never a row that waits for no message.
    const { nextVisibleOn } = await state.queue.enqueue({ id }, { delaySeconds });
    await state.statuses
      .replace({ ...record, status: 'queued', lastError: sendErrorOf(failure), outcomeUnknown: failure.outcomeUnknown, nextAttemptAt: nextVisibleOn.toISOString(), sendingUntil: undefined, sendingBy: undefined, updatedAt: new Date().toISOString() }, etag)
      .catch((error: unknown) => runtime.logger.warn({ operation: 'sendWorker', profile: record.profile, id, outcome: 'error', code: isMailError(error) ? error.code : 'ESTATE', reason: 'retry not recorded' }));
    runtime.logger.warn({ operation: 'sendWorker', profile: record.profile, id, outcome: 'retry', code: failure.code, attempts: record.attempts, delaySeconds, retryAfter: failure.retryAfter });
    return 'retrying';
  }
  const lastError = sendErrorOf(failure);
  if (transient) lastError.hint = `${lastError.hint ?? ''} Gave up after ${record.attempts} attempts (SEND_MAX_ATTEMPTS).`.trim();
  try {
    // Conditional, unlike 'sent': a worker that took over past this attempt's hold may have sent
    // the message meanwhile, and a failure here must not overwrite that.
    await state.statuses.replace({ ...record, status: 'failed', lastError, sendingUntil: undefined, sendingBy: undefined, updatedAt: new Date().toISOString() }, etag);
  } catch (error) {
    if (!(isMailError(error) && error.code === 'ESTATE_CONFLICT')) throw error;
    runtime.logger.warn({ operation: 'sendWorker', profile: record.profile, id, outcome: 'skipped', code: failure.code, reason: 'failed, but another worker took the send over meanwhile; its outcome stands' });
    return 'skipped';
  }
  await removePayload(runtime, state, record);
  runtime.logger.error({ operation: 'sendWorker', profile: record.profile, id, outcome: 'error', code: failure.code, attempts: record.attempts, final: true });
  return 'failed';
}

/**
 * One attempt: the outcome, or the MailError it failed with. Only reading the outbox may
 * throw (storage): the host then delivers the same queue message again, which takes over.
 */
async function sendOnce(runtime: MailRuntime, state: SendState, record: SendRecord, pacedAt: number | undefined): Promise<(SendOutcome & { reconciled?: Reconciled }) | MailError | Deferral | Settled> {
  const document = await storedDocument(state, record);
  try {
    if (document === undefined) {
      throw new MailError('ESTATE', `the queued message of send ${record.id} is missing from the outbox`, { hint: 'The outbox blob was removed outside this app; send the message again.' });
    }
    const stored = fromStoredMessage(document);
    const profile = checkQueuedMessage(runtime, { ...stored, ...(record.caller !== undefined && { caller: record.caller }) });
    const abortSignal = AbortSignal.timeout(ATTEMPT_TIMEOUT_MS);
    let reconciled: Reconciled | undefined;
    if (record.outcomeUnknown) {
      // Looked for before anything else, the pacer included: a message that went out is not sent again.
      const settlement = await settleUnknownAttempt(runtime, profile, stored.message.messageId, { id: record.id, abortSignal });
      if (settlement.next !== 'send') return new Settled({ ...settlement, next: settlement.next }, stored.message.messageId, runtime.sender(profile).via);
      reconciled = settlement.reconciled;
    }
    let place = pacedAt;
    if (place === undefined) {
      // Its place in the mailbox's send rate, kept even when it is later: then it waits on the queue and goes without asking again.
      const decision = await runtime.governor?.pace(profile, recipientCount(stored.message), { maxWaitMs: Number.POSITIVE_INFINITY, abortSignal });
      place = decision?.at ?? Date.now();
      if (decision && place > Date.now() + SHORT_PACE_WAIT_MS) return new Deferral(place, decision, profile);
    } else if (place > Date.now() + SHORT_PACE_WAIT_MS) {
      return new Deferral(place, { waitMs: place - Date.now(), at: place, booked: true }, profile);
    }
    // A place this close is waited for here: sending early would bunch the messages the rate spaces out.
    const wait = place - Date.now();
    if (wait > 0) await delay(wait, abortSignal);
    const outcome = await deliverMessage(runtime, { profile, message: stored.message }, { id: record.id, abortSignal, mode: 'queued', pace: 'booked' });
    return reconciled === undefined ? outcome : { ...outcome, reconciled };
  } catch (error) {
    return isMailError(error) ? error : unexpected(runtime, record, error);
  }
}

/** An attempt whose unknown outcome was settled without sending: it went out, or it never will (at most once). */
class Settled {
  constructor(readonly settlement: Settlement & { next: 'sent' | 'unknown' }, readonly messageId: string, readonly via: string) {}
}

/**
 * Settles, in this worker, a last attempt that lost its answer; undefined when that is not
 * possible now (the lookup failed): the send then fails as before. Not found means not sent.
 */
async function settleNow(runtime: MailRuntime, state: SendState, record: SendRecord, failure: MailError): Promise<Settled | undefined> {
  try {
    const profile = runtime.profile(record.profile);
    const messageId = record.messageId ?? (await storedDocument(state, record).then((d) => (d === undefined ? undefined : fromStoredMessage(d).message.messageId)));
    if (messageId === undefined) return undefined;
    const settlement = await settleUnknownAttempt(runtime, profile, messageId, { id: record.id, abortSignal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS) });
    return settlement.next === 'send' ? undefined : new Settled({ ...settlement, next: settlement.next }, messageId, runtime.sender(profile).via);
  } catch (error) {
    runtime.logger.warn({ operation: 'sendWorker', profile: record.profile, id: record.id, outcome: 'error', code: isMailError(error) ? error.code : 'EINTERNAL', reason: `outcome of the last attempt (${failure.code}) not settled` });
    return undefined;
  }
}

/**
 * The row of a settled send: `sent` (found in the sent mail) or `unknown` (at most once), with
 * how it was settled. Settling before sending is no attempt: the caller takes the claim's count back.
 */
async function recordSettled(runtime: MailRuntime, state: SendState, record: SendRecord, settled: Settled): Promise<QueuedSendOutcome> {
  const { next, reconciled } = settled.settlement;
  await state.statuses.replace(
    { ...record, status: next, messageId: settled.messageId, via: settled.via, reconciled, ...(next === 'sent' && { lastError: undefined }), outcomeUnknown: undefined, sendingUntil: undefined, sendingBy: undefined, updatedAt: new Date().toISOString() },
    '*',
  );
  await removePayload(runtime, state, record);
  runtime.logger.info({ operation: 'sendWorker', profile: record.profile, id: record.id, outcome: next === 'sent' ? 'ok' : 'skipped', reconciled, status: next });
  return next === 'sent' ? 'sent' : 'unknown';
}

const SEE_SEND_LOGS = 'See the function logs for this send id.';

/** A sender that throws something other than a MailError has a bug: fail the send (retrying could repeat whatever it did), log the cause. */
function unexpected(runtime: MailRuntime, record: SendRecord, error: unknown): MailError {
  runtime.logger.error({ operation: 'sendWorker', profile: record.profile, id: record.id, outcome: 'error', error: errorDetail(error) });
  return asMailError(error, SEE_SEND_LOGS);
}

/** The queued message: kept in the status row when it fits, else in the outbox blob (acceptSend.ts). */
function storedDocument(state: SendState, record: SendRecord): Promise<string | undefined> {
  return record.payload !== undefined ? Promise.resolve(record.payload) : state.outbox.get(record.id);
}

/**
 * The outbox keeps a message only until it is sent or has failed for good: the caller still
 * has it, and the status says what happened. One kept in the status row went with the row's
 * settled write; a blob that cannot be removed is only storage.
 */
async function removePayload(runtime: MailRuntime, state: SendState, record: SendRecord): Promise<void> {
  if (record.payload !== undefined) return;
  await state.outbox.remove(record.id).catch((error: unknown) => {
    runtime.logger.warn({ operation: 'sendWorker', profile: record.profile, id: record.id, outcome: 'error', code: isMailError(error) ? error.code : 'ESTATE', reason: 'outbox entry not removed' });
  });
}

async function failAfterHostRetries(runtime: MailRuntime, state: SendState, id: string, error: unknown): Promise<void> {
  const failure = asMailError(error, SEE_SEND_LOGS);
  try {
    const stored = await state.statuses.get(id);
    if (!stored || isSettled(stored.record.status)) return;
    const lastError = sendErrorOf(failure);
    lastError.hint = `${lastError.hint ?? ''} The queue gave up after ${HOST_MAX_DEQUEUE_COUNT} deliveries; the message is in mail-send-poison.`.trim();
    await state.statuses.replace({ ...stored.record, status: 'failed', lastError, sendingUntil: undefined, sendingBy: undefined, updatedAt: new Date().toISOString() }, stored.etag);
  } catch (recordError) {
    runtime.logger.error({ operation: 'sendWorker', id, outcome: 'error', code: isMailError(recordError) ? recordError.code : 'ESTATE', reason: 'failure after the last delivery not recorded' });
  }
}
