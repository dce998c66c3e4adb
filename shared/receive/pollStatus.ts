import { isMailError } from '../errors.js';
import { errorDetail } from '../log.js';
import type { MailRuntime } from '../runtime.js';
import type { PollStatusRecord } from '../state/index.js';
import type { PollResult } from './pollMailbox.js';

export interface RecordOptions {
  /** When the poll ended; the clock by default. */
  now?: Date;
}

/**
 * The poll has ended when this runs; storage that does not answer must not hold the invocation
 * (the health endpoints then show an older outcome, nothing else is lost).
 */
const RECORD_TIMEOUT_MS = 5_000;

/** Two polls of one profile recording at the same moment each get another try after a lost ETag race. */
const RECORD_ATTEMPTS = 3;

/** A provider's error text can be long; health shows the gist, the log has the rest. */
const MESSAGE_CHARS = 1_000;

/**
 * Records how a poll went, for GET /api/health and /api/health/profiles. Never rejects: a
 * poll's outcome stands whether or not it could be recorded, so a failure here is a warning.
 * A `leased` result is not recorded: another worker polled the mailbox, and records that poll.
 */
export async function recordPollOutcome(runtime: MailRuntime, result: PollResult, options: RecordOptions = {}): Promise<void> {
  const status = result.status;
  if (status === 'leased') return;
  const now = (options.now ?? new Date()).toISOString();
  const abortSignal = AbortSignal.timeout(RECORD_TIMEOUT_MS);
  try {
    const store = runtime.state.pollStatus;
    for (let attempt = 1; ; attempt++) {
      const stored = await store.get(result.profile, { abortSignal });
      if (stored?.unreadable !== undefined) {
        runtime.logger.warn({ operation: 'poll.status', profile: result.profile, outcome: 'retry', code: 'ESTATE', error: `replacing an unreadable poll status row (${stored.unreadable})` });
      }
      try {
        await store.put(nextRecord(stored?.record, result, status, now), stored?.etag, { abortSignal });
        return;
      } catch (error) {
        if (!(isMailError(error) && error.code === 'ESTATE_CONFLICT') || attempt === RECORD_ATTEMPTS) throw error;
      }
    }
  } catch (error) {
    runtime.logger.warn({
      operation: 'poll.status',
      profile: result.profile,
      outcome: 'error',
      code: isMailError(error) ? error.code : 'EINTERNAL',
      error: isMailError(error) ? error.message : errorDetail(error),
    });
  }
}

function nextRecord(previous: PollStatusRecord | undefined, result: PollResult, status: PollStatusRecord['lastStatus'], now: string): PollStatusRecord {
  const lastCompletedAt = status === 'completed' ? now : previous?.lastCompletedAt;
  const lastDeliveredAt = result.delivered > 0 ? now : previous?.lastDeliveredAt;
  const lastError = result.error
    ? { code: result.error.code, message: result.error.message.slice(0, MESSAGE_CHARS), ...(result.error.hint !== undefined && { hint: result.error.hint }), at: now }
    : previous?.lastError;
  return {
    profile: result.profile,
    lastPollAt: now,
    lastStatus: status,
    ...(lastCompletedAt !== undefined && { lastCompletedAt }),
    ...(lastDeliveredAt !== undefined && { lastDeliveredAt }),
    // An aborted poll (deadline, lost lease) made progress or was stopped from outside: it neither counts nor clears a failure.
    consecutiveFailures: status === 'failed' ? (previous?.consecutiveFailures ?? 0) + 1 : status === 'completed' ? 0 : (previous?.consecutiveFailures ?? 0),
    ...(lastError !== undefined && { lastError }),
    lastCounts: { delivered: result.delivered, filtered: result.filtered, duplicates: result.duplicates, deadLettered: result.deadLettered, oversized: result.oversized, durationMs: result.durationMs },
  };
}
