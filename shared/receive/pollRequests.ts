import { z } from 'zod';
import { isMailError } from '../errors.js';
import type { MailRuntime } from '../runtime.js';
import { pollMailbox, receivingProfiles, type PollResult } from './pollMailbox.js';
import { recordPollOutcome } from './pollStatus.js';

/** The queue (`mail-poll`) the timer fans out to and the worker reads. */
export { POLL_QUEUE } from '../state/queueNames.js';

/** One message on `mail-poll`: poll this profile's mailbox once. */
export const pollRequestSchema = z.object({ profile: z.string().min(1), requestedAt: z.string().optional() });
export type PollRequest = z.infer<typeof pollRequestSchema>;

/** One poll request per receiving profile, for the timer's fan-out. */
export function pollRequests(runtime: MailRuntime, now: Date = new Date()): PollRequest[] {
  return receivingProfiles(runtime).map((profile) => ({ profile: profile.name, requestedAt: now.toISOString() }));
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
    return await pollAndRecord(runtime, request.data.profile);
  } catch (error) {
    if (!isMailError(error)) throw error;
    runtime.logger.error({ operation: 'pollWorker', profile: request.data.profile, outcome: 'error', code: error.code, error: error.message });
    return undefined;
  }
}
