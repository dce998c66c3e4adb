import { untilAborted } from '../abort.js';
import { MailError } from '../errors.js';
import type { MailRuntime } from '../runtime.js';
import type { Profile } from '../config/profiles.js';

/** How long a count of a profile's pending sends stands before the table is asked again. */
export const BACKLOG_RECOUNT_MS = 10_000;
/** What a refused sender is told to wait: a backlog drains at the profile's send rate, not in seconds. */
export const BACKLOG_RETRY_AFTER_SECONDS = 60;
/** A queued send deferred by `send.maxPerRun` is offered again after this. */
export const MAX_PER_RUN_DELAY_SECONDS = 5;

/**
 * `send.maxPending`: the queued sends of a profile (status `queued` or `sending`) are counted from
 * the status table at most every BACKLOG_RECOUNT_MS per instance, and counted up in between by the
 * sends this instance accepts; at the limit POST /api/send answers 503 EBACKLOG with Retry-After
 * and stores nothing. Several instances together may overshoot by what they accept within one
 * recount: the limit protects the mailbox from an unbounded backlog, it is not a quota.
 */
export class SendBacklog {
  private readonly counts = new Map<string, { count: number; at: number }>();
  /** The recount in flight per profile: the requests that find the count stale at once share it rather than each scanning the table. */
  private readonly recounts = new Map<string, Promise<{ count: number; at: number }>>();

  constructor(private readonly runtime: MailRuntime) {}

  async admit(profile: Profile, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const limit = profile.send?.maxPending ?? 10_000;
    let known = this.counts.get(profile.name);
    if (!known || Date.now() - known.at > BACKLOG_RECOUNT_MS) known = await untilAborted(this.recount(profile.name, limit), options.abortSignal);
    if (known.count >= limit) {
      throw new MailError('EBACKLOG', `profile "${profile.name}" has ${limit} or more sends waiting (send.maxPending)`, {
        profile: profile.name,
        field: 'send.maxPending',
        retryAfter: BACKLOG_RETRY_AFTER_SECONDS,
        hint: `Nothing was stored: send again after the Retry-After. The queue drains at send.ratePerMinute; raise profiles.${profile.name}.send.maxPending if a longer backlog is acceptable.`,
      });
    }
    known.count++;
  }

  private recount(profile: string, limit: number): Promise<{ count: number; at: number }> {
    let pending = this.recounts.get(profile);
    if (!pending) {
      const at = Date.now();
      pending = this.runtime.state.send.statuses
        .countPending(profile, limit)
        .then((count) => {
          const known = { count, at };
          this.counts.set(profile, known);
          return known;
        })
        .finally(() => this.recounts.delete(profile));
      this.recounts.set(profile, pending);
    }
    return pending;
  }
}

/**
 * `send.maxPerRun`: the queued sends of one profile this instance has in flight. `enter` answers
 * false when the profile is at its limit (the caller puts the send back on the queue for
 * MAX_PER_RUN_DELAY_SECONDS); a true one must be followed by `leave`.
 */
export class SendsInFlight {
  private readonly running = new Map<string, number>();

  enter(profile: Profile): boolean {
    const limit = profile.send?.maxPerRun;
    const now = this.running.get(profile.name) ?? 0;
    if (limit !== undefined && now >= limit) return false;
    this.running.set(profile.name, now + 1);
    return true;
  }

  leave(profile: Profile): void {
    const now = this.running.get(profile.name) ?? 1;
    if (now <= 1) this.running.delete(profile.name);
    else this.running.set(profile.name, now - 1);
  }
}
