import { z } from 'zod';
import { isMailError } from '../errors.js';
import type { MailRuntime } from '../runtime.js';
import { pollMailbox, receivingProfiles, type PollResult, type ReceivingProfile } from './pollMailbox.js';
import { LEASED_RETRY_SECONDS, POLL_REASONS, SUBSCRIPTION_ACTIONS, activePushProfiles, ensureSubscription, pushProfileNamed, requestPoll, subscriptionState } from './push.js';
import { recordPollOutcome } from './pollStatus.js';

/** The queue (`mail-poll`) the timer fans out to and the worker reads. */
export { POLL_QUEUE } from '../state/queueNames.js';

/**
 * One message on `mail-poll`: poll this profile's mailbox once. A push profile's request may say
 * why (a notification's poll that finds the mailbox leased asks again) and, from a lifecycle
 * event, what to do to its subscription first.
 */
export const pollRequestSchema = z.object({
  profile: z.string().min(1),
  requestedAt: z.string().optional(),
  reason: z.enum(POLL_REASONS).optional(),
  subscription: z.enum(SUBSCRIPTION_ACTIONS).optional(),
});
export type PollRequest = z.infer<typeof pollRequestSchema>;

/**
 * The poll timer's fan-out: every receiving profile except the push profiles whose subscription
 * is active, which notifications and the fallback timer poll. A push profile whose subscription
 * is failing, expired or not made yet is polled on this schedule again (and its first poll makes it).
 */
export async function pollRequests(runtime: MailRuntime, options: { now?: Date; abortSignal?: AbortSignal } = {}): Promise<PollRequest[]> {
  const now = options.now ?? new Date();
  const active = await activePushProfiles(runtime, { now, ...(options.abortSignal && { abortSignal: options.abortSignal }) });
  return receivingProfiles(runtime).filter((p) => !active.has(p.name)).map((p) => ({ profile: p.name, requestedAt: now.toISOString(), reason: 'timer' }));
}

/** The fallback timer's fan-out (PUSH_FALLBACK_SCHEDULE): the push profiles whose subscription is active, polled now and then as a safety net. */
export async function fallbackPollRequests(runtime: MailRuntime, options: { now?: Date; abortSignal?: AbortSignal } = {}): Promise<PollRequest[]> {
  const now = options.now ?? new Date();
  const active = await activePushProfiles(runtime, { now, ...(options.abortSignal && { abortSignal: options.abortSignal }) });
  return [...active].map((profile) => ({ profile, requestedAt: now.toISOString(), reason: 'fallback' }));
}

/**
 * How long one poll may run before it stops between messages and keeps what it acknowledged:
 * below the Consumption plan's default function timeout of 5 minutes, so the host never kills
 * a poll half-way. App setting POLL_MAX_DURATION_SECONDS.
 */
export function pollDeadline(runtime: MailRuntime): AbortSignal {
  return AbortSignal.timeout(runtime.settings.pollMaxDurationSeconds * 1000);
}

/**
 * One poll of one profile under the POLL_MAX_DURATION_SECONDS deadline, its outcome recorded for
 * the health endpoints: what pollWorker, pollNow and `m365-mail poll` run.
 */
export async function pollAndRecord(runtime: MailRuntime, profileName: string): Promise<PollResult> {
  const result = await pollMailbox(runtime, profileName, { abortSignal: pollDeadline(runtime) });
  await recordPollOutcome(runtime, result);
  return result;
}

/**
 * Handles one `mail-poll` queue item. A malformed item or a profile that is gone (removed
 * between fan-out and now) is logged and dropped: retrying it cannot help, and the next timer
 * tick asks again for every profile that exists. Poll failures are in the result, not thrown,
 * for the same reason.
 */
export async function handlePollRequest(runtime: MailRuntime, item: unknown): Promise<PollResult | undefined> {
  const request = pollRequestSchema.safeParse(item);
  if (!request.success) {
    runtime.logger.error({ operation: 'pollWorker', outcome: 'error', code: 'EINPUT', error: `not a poll request: ${request.error.issues[0]?.message ?? 'invalid'}` });
    return undefined;
  }
  try {
    const push = pushProfileNamed(runtime, request.data.profile);
    if (push) await beforePushPoll(runtime, push, request.data);
    const result = await pollAndRecord(runtime, request.data.profile);
    // The worker holding the lease may have read the folder before the notified message arrived.
    if (push && result.status === 'leased' && request.data.reason === 'notification') await requestPoll(runtime, push.name, { reason: 'notification', delaySeconds: LEASED_RETRY_SECONDS });
    return result;
  } catch (error) {
    if (!isMailError(error)) throw error;
    runtime.logger.error({ operation: 'pollWorker', profile: request.data.profile, outcome: 'error', code: error.code, error: error.message });
    return undefined;
  }
}

/**
 * Before a push profile's poll: its poll-pending marker is cleared, so a notification from now on
 * asks for another poll; a lifecycle event's renewal or new subscription is made; and a profile
 * without a subscription, or whose subscription expired, gets one (its first poll makes it). A
 * failing one is left to the renewal timer: a poll every minute must not ask Graph every minute
 * to validate a URL it could not reach. A subscription that cannot be made is recorded and logged
 * by ensureSubscription, and the poll goes on.
 */
async function beforePushPoll(runtime: MailRuntime, profile: ReceivingProfile, request: PollRequest): Promise<void> {
  await runtime.state.subscriptions.clearPoll(profile.name).catch((error: unknown) => {
    // The marker then goes stale and the next notification after that enqueues again.
    runtime.logger.warn({ operation: 'pollWorker', profile: profile.name, outcome: 'error', code: isMailError(error) ? error.code : 'ESTATE', error: 'could not clear the poll-pending marker' });
  });
  const record = request.subscription === undefined ? (await runtime.state.subscriptions.get(profile.name))?.record : undefined;
  const state = subscriptionState(record, new Date());
  if (request.subscription !== undefined || state === 'missing' || state === 'expired') {
    await ensureSubscription(runtime, profile, { ...(request.subscription && { action: request.subscription }) });
  }
}
