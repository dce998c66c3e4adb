import { randomBytes } from 'node:crypto';
import type { AppSettings } from '../config/settings.js';
import { withAuthRetry } from '../identity/tokenProvider.js';
import { registerSensitive } from '../redact.js';
import type { MailRuntime } from '../runtime.js';
import { POLL_QUEUE } from '../state/queueNames.js';
import type { SubscriptionRecord } from '../state/index.js';
import { stateError } from '../state/storage.js';
import { receivingProfiles, type ReceivingProfile } from './pollMailbox.js';
import { describeFailure, type PollError } from './pollError.js';
import { LIFECYCLE_ROUTE, NOTIFICATION_ROUTE } from './notificationRoutes.js';
import { stripEnds } from '../text.js';


/**
 * A new or renewed subscription lives an hour less than Graph's longest (10,080 minutes for
 * messages), so that our clock running ahead of Graph's never makes it refuse the expiry, and is
 * renewed once less than three days are left: a renewal timer every 30 minutes gets about 140
 * tries before it lapses, and a failure is visible in health days before it matters.
 */
const LIFETIME_MARGIN_MINUTES = 60;
const RENEW_WHEN_LEFT_MS = 3 * 24 * 3600 * 1000;

/**
 * A poll-pending marker older than this is taken for lost (its queue message never ran, a worker
 * crashed): the next notification enqueues again. Longer than a poll may run (POLL_MAX_DURATION_SECONDS
 * is at most the host's 10-minute timeout) and than a queue message waits in a busy app.
 */
const PENDING_STALE_MS = 10 * 60 * 1000;

/** Time for a poll that found the mailbox leased before it asks again: the lease holder may have read the folder before the new message. */
export const LEASED_RETRY_SECONDS = 30;

/** Why a poll is asked for: the timers, a notification, or a lifecycle event. */
export const POLL_REASONS = ['timer', 'fallback', 'notification', 'lifecycle'] as const;
export type PollReason = (typeof POLL_REASONS)[number];

/** What a lifecycle event asks to be done to the subscription before the poll. */
export const SUBSCRIPTION_ACTIONS = ['renew', 'recreate'] as const;
export type SubscriptionAction = (typeof SUBSCRIPTION_ACTIONS)[number];

/**
 * active: created or renewed, not expired, the last attempt succeeded; failing: the last attempt
 * failed; expired: past its expiry; missing: never made (the first poll makes it).
 */
export type SubscriptionState = 'active' | 'failing' | 'expired' | 'missing';

export function isPushProfile(profile: ReceivingProfile): boolean {
  return profile.receive.push === true;
}

export function pushProfiles(runtime: MailRuntime): ReceivingProfile[] {
  return receivingProfiles(runtime).filter(isPushProfile);
}

/** The configured push profile of this name; undefined for any other (gone, or not receiving by push). */
export function pushProfileNamed(runtime: MailRuntime, name: string): ReceivingProfile | undefined {
  return pushProfiles(runtime).find((p) => p.name === name);
}

export function subscriptionState(record: SubscriptionRecord | undefined, now: Date): SubscriptionState {
  if (record !== undefined && record.consecutiveFailures > 0) return 'failing';
  if (record?.subscriptionId === undefined || record.expiresAt === undefined) return 'missing';
  return Date.parse(record.expiresAt) <= now.getTime() ? 'expired' : 'active';
}

/** Whether the subscription must be created or renewed now. */
function isDue(record: SubscriptionRecord | undefined, now: Date): boolean {
  return subscriptionState(record, now) !== 'active' || Date.parse(record!.expiresAt!) - now.getTime() < RENEW_WHEN_LEFT_MS;
}

/** Where Graph posts: NOTIFICATION_URL (checked to be https when the runtime starts) and the functions' routes. */
export function notificationUrls(settings: AppSettings): { notificationUrl: string; lifecycleNotificationUrl: string } {
  const base = `${stripEnds(settings.notificationUrl ?? '', '/', 'end')}/api`;
  return { notificationUrl: `${base}/${NOTIFICATION_ROUTE}`, lifecycleNotificationUrl: `${base}/${LIFECYCLE_ROUTE}` };
}

export interface EnsureResult {
  profile: string;
  /** created: a first or new subscription; renewed; current: not due; leased: another instance is at it; failed: see error. */
  outcome: 'created' | 'renewed' | 'current' | 'leased' | 'failed';
  expiresAt?: string;
  error?: PollError;
}

export interface EnsureOptions {
  /** The clock; now by default. */
  now?: Date;
  /** Renew (reauthorizationRequired) or make a new one (subscriptionRemoved) whether or not it is due. */
  action?: SubscriptionAction;
  abortSignal?: AbortSignal;
}

/** Each attempt at the provider gets this long; the renewal timer and the poll go on without it. */
const ATTEMPT_TIMEOUT_MS = 30_000;

/**
 * Makes sure the push profile has a live subscription: renews it when due (or asked), makes a new
 * one when there is none or Graph no longer has it, each with a fresh clientState. Under a blob
 * lease per profile, so two instances never renew one subscription at once; the row is read again
 * under the lease, so the second of two instances finds it renewed and does nothing. Never
 * rejects on the provider's failure: that is recorded in the row (health shows it) and logged.
 */
export async function ensureSubscription(runtime: MailRuntime, profile: ReceivingProfile, options: EnsureOptions = {}): Promise<EnsureResult> {
  const now = options.now ?? new Date();
  const store = runtime.state.subscriptions;
  const lease = await runtime.state.receive.leases.acquire(`subscription:${profile.name}`, { abortSignal: options.abortSignal });
  if (!lease) return { profile: profile.name, outcome: 'leased' };
  try {
    const stored = await store.get(profile.name, { abortSignal: options.abortSignal });
    const record = stored?.record;
    if (options.action === undefined && !isDue(record, now)) return { profile: profile.name, outcome: 'current', ...(record?.expiresAt && { expiresAt: record.expiresAt }) };
    const subscriptions = runtime.subscriptions(profile);
    const expiresAt = new Date(now.getTime() + (subscriptions.maxLifetimeMinutes - LIFETIME_MARGIN_MINUTES) * 60_000);
    const abortSignal = AbortSignal.any([lease.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS), ...(options.abortSignal ? [options.abortSignal] : [])]);
    const tokens = runtime.tokens(profile);
    let next: SubscriptionRecord;
    let outcome: 'created' | 'renewed';
    try {
      const id = options.action === 'recreate' ? undefined : record?.subscriptionId;
      const renewed = id === undefined ? undefined : await withAuthRetry(tokens, () => subscriptions.renew(id, expiresAt, { abortSignal }));
      if (renewed) {
        outcome = 'renewed';
        next = { ...record!, expiresAt: renewed.expiresAt.toISOString(), lastRenewedAt: now.toISOString(), lastAttemptAt: now.toISOString(), consecutiveFailures: 0 };
      } else {
        const clientState = randomBytes(32).toString('base64url');
        registerSensitive(clientState);
        const created = await withAuthRetry(tokens, () => subscriptions.subscribe({ ...notificationUrls(runtime.settings), clientState, expiresAt, abortSignal }));
        outcome = 'created';
        next = {
          profile: profile.name,
          subscriptionId: created.id,
          clientState,
          resource: created.resource,
          expiresAt: created.expiresAt.toISOString(),
          lastRenewedAt: now.toISOString(),
          lastAttemptAt: now.toISOString(),
          consecutiveFailures: 0,
          ...(record?.lastError && { lastError: record.lastError }),
        };
      }
    } catch (error) {
      const failure = describeFailure(error);
      const failed: SubscriptionRecord = { ...(record ?? { profile: profile.name }), lastAttemptAt: now.toISOString(), consecutiveFailures: (record?.consecutiveFailures ?? 0) + 1, lastError: { ...failure, at: now.toISOString() } };
      await store.put(failed, stored?.etag, { abortSignal: options.abortSignal });
      runtime.logger.error({ operation: 'subscription', profile: profile.name, outcome: 'error', code: failure.code, error: failure.message, consecutiveFailures: failed.consecutiveFailures });
      return { profile: profile.name, outcome: 'failed', error: failure };
    }
    await store.put(next, stored?.etag, { abortSignal: options.abortSignal });
    runtime.logger.info({ operation: 'subscription', profile: profile.name, outcome: 'ok', action: outcome, id: next.subscriptionId, expiresAt: next.expiresAt });
    return { profile: profile.name, outcome, ...(next.expiresAt && { expiresAt: next.expiresAt }) };
  } finally {
    await lease.release({ abortSignal: AbortSignal.timeout(5_000) });
  }
}

/**
 * The renewal timer's work: every push profile whose subscription is due (expiring within three
 * days, failing, expired or missing) is renewed or made anew. The rows are read in one query; a
 * profile that is not due costs nothing more. A new subscription is followed by a poll: mail that
 * came while there was none, or before Graph's first notification, is read then.
 */
export async function renewSubscriptions(runtime: MailRuntime, options: { now?: Date; abortSignal?: AbortSignal } = {}): Promise<EnsureResult[]> {
  const now = options.now ?? new Date();
  const profiles = pushProfiles(runtime);
  if (profiles.length === 0) return [];
  const records = await runtime.state.subscriptions.list({ abortSignal: options.abortSignal });
  const due = profiles.filter((p) => isDue(records.get(p.name), now));
  const signal = options.abortSignal && { abortSignal: options.abortSignal };
  return Promise.all(due.map(async (p) => {
    const result = await ensureSubscription(runtime, p, { now, ...signal });
    if (result.outcome === 'created') await requestPoll(runtime, p.name, { reason: 'timer', now, ...signal });
    return result;
  }));
}

/** The push profiles whose subscription is active, by name: the regular poll timer leaves them to the fallback timer. */
export async function activePushProfiles(runtime: MailRuntime, options: { now?: Date; abortSignal?: AbortSignal } = {}): Promise<Set<string>> {
  const profiles = pushProfiles(runtime);
  if (profiles.length === 0) return new Set();
  const now = options.now ?? new Date();
  const records = await runtime.state.subscriptions.list({ abortSignal: options.abortSignal });
  return new Set(profiles.filter((p) => subscriptionState(records.get(p.name), now) === 'active').map((p) => p.name));
}

export interface QueuedPoll {
  profile: string;
  requestedAt: string;
  reason?: PollReason;
  subscription?: SubscriptionAction;
}

/**
 * Asks for a poll of a push profile on the poll queue, coalesced: while one is pending (a marker
 * in the subscriptions table, cleared when its poll starts) a burst of notifications for the
 * mailbox enqueues nothing more. Lost or duplicated requests lose or duplicate nothing: the poll
 * reads the delta since its cursor. A lifecycle action is always enqueued (they are rare, and a
 * renewal must not wait behind a poll). Answers whether a message was enqueued.
 */
export async function requestPoll(runtime: MailRuntime, profile: string, options: { reason: PollReason; subscription?: SubscriptionAction; delaySeconds?: number; now?: Date; abortSignal?: AbortSignal }): Promise<boolean> {
  const now = options.now ?? new Date();
  const store = runtime.state.subscriptions;
  if (options.subscription === undefined && !(await store.claimPoll(profile, { now, staleAfterMs: PENDING_STALE_MS, ...(options.abortSignal && { abortSignal: options.abortSignal }) }))) return false;
  const message: QueuedPoll = { profile, requestedAt: now.toISOString(), reason: options.reason, ...(options.subscription && { subscription: options.subscription }) };
  try {
    const queue = await runtime.state.account.queue(POLL_QUEUE);
    // Base64, because host.json sets the queue trigger's messageEncoding to base64.
    await queue.sendMessage(Buffer.from(JSON.stringify(message)).toString('base64'), { visibilityTimeout: options.delaySeconds ?? 0, abortSignal: options.abortSignal });
    return true;
  } catch (error) {
    // Nothing is pending after all: the next notification (or Graph's retry of this one) tries again.
    if (options.subscription === undefined) await store.clearPoll(profile).catch(() => undefined);
    throw stateError(error, `could not queue a poll of profile "${profile}"`);
  }
}
