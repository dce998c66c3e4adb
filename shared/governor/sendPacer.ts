import { MailError } from '../errors.js';
import { tableKey } from '../state/keys.js';
import type { StorageAccount } from '../state/storage.js';
import { changeRow, numberField } from './governorTable.js';
import { estimate, rollTo, waitFor, type WindowCount } from './slidingWindow.js';

/** Exchange Online counts recipients over a rolling 24 hours. https://learn.microsoft.com/office365/servicedescriptions/exchange-online-service-description/exchange-online-limits#sending-limits-1 */
export const RECIPIENT_WINDOW_MS = 24 * 60 * 60 * 1000;

export interface SendPace {
  /** Messages per minute (Exchange Online: 30). */
  ratePerMinute: number;
  /** Recipients (to + cc + bcc) per 24 hours (Exchange Online: 10,000). */
  recipientsPerDay: number;
}

/** When a message may go: now (`waitMs` 0), or after `waitMs`; `limit` says which limit holds it back; `booked`: the place is kept for it. */
export interface PaceDecision {
  waitMs: number;
  /** When the place is (ms since the epoch, this process's clock when it was decided): `waitMs` from the decision, not from when its answer arrived. */
  at: number;
  limit?: 'send_rate' | 'recipients_per_day';
  booked: boolean;
}

export interface PaceState extends SendPace {
  /** When the next message may go without waiting (null: now). */
  nextSendAt: string | null;
  /** Recipients counted in the rolling 24 hours. */
  recipients: number;
}

/**
 * Up to 5 messages may go at once from an idle mailbox (a handful of notifications is not held
 * back), then one every 60 / (ratePerMinute - 4) seconds: that spacing keeps any 60 seconds at
 * ratePerMinute at most, burst included (Exchange counts per minute), and a backlog goes out evenly
 * instead of in bursts (60 queued at 30 a minute take about two minutes).
 */
export function burstOf(pace: SendPace): number {
  return Math.min(5, pace.ratePerMinute);
}

function intervalOf(pace: SendPace): number {
  return 60_000 / (pace.ratePerMinute - burstOf(pace) + 1);
}

/**
 * The send rate of one sending mailbox, shared by every instance in one table row updated with its
 * ETag: a generic cell rate algorithm (the row keeps the theoretical time of the next message) for
 * messages per minute, and a sliding 24-hour count of recipients.
 *
 * `book` keeps the message's place in the schedule when it is at most `maxWaitMs` away: a queued
 * message (no bound) then waits on the queue until its place and goes without asking again, so a
 * backlog of N is N writes, not N per round; a sync send waits a few seconds at most, else it is
 * told when to come back and nothing is booked.
 */
export class SendPacer {
  private readonly key: { partitionKey: string; rowKey: string };

  constructor(
    private readonly account: StorageAccount,
    mailbox: string,
    private readonly now: () => number = Date.now,
  ) {
    this.key = { partitionKey: tableKey(`send|${mailbox.toLowerCase()}`), rowKey: 'pace' };
  }


  async read(pace: SendPace, options: { abortSignal?: AbortSignal } = {}): Promise<PaceState> {
    return changeRow(this.account, this.key, (row) => {
      const now = this.now();
      const next = numberField(row, 'tat') - (burstOf(pace) - 1) * intervalOf(pace);
      return { result: { ...pace, nextSendAt: next > now ? new Date(next).toISOString() : null, recipients: Math.ceil(estimate(countOf(row), now, RECIPIENT_WINDOW_MS)) } };
    }, options);
  }

  book(pace: SendPace, recipients: number, options: { maxWaitMs: number; abortSignal?: AbortSignal }): Promise<PaceDecision> {
    if (recipients > pace.recipientsPerDay) {
      throw new MailError('ETOO_MANY_RECIPIENTS', `${recipients} recipients exceed the ${pace.recipientsPerDay} this mailbox may send to in a day`, {
        field: 'to',
        hint: 'Split the message, or raise send.recipientsPerDay (Exchange Online allows 10,000 recipients a day per mailbox).',
      });
    }
    return changeRow<PaceDecision>(this.account, this.key, (row) => {
      const now = this.now();
      const interval = intervalOf(pace);
      const tolerance = (burstOf(pace) - 1) * interval;
      const tat = Math.max(numberField(row, 'tat'), now);
      const rateWait = Math.max(0, tat - tolerance - now);
      const count = rollTo(countOf(row), now + rateWait, RECIPIENT_WINDOW_MS);
      const recipientWait = waitFor(count, recipients, pace.recipientsPerDay, now + rateWait, RECIPIENT_WINDOW_MS);
      const waitMs = rateWait + recipientWait;
      const limit = recipientWait > 0 ? 'recipients_per_day' as const : rateWait > 0 ? 'send_rate' as const : undefined;
      const at = now + waitMs;
      if (waitMs > options.maxWaitMs) return { result: { waitMs, at, booked: false, ...(limit !== undefined && { limit }) } };
      const counted = rollTo(count, at, RECIPIENT_WINDOW_MS);
      return {
        write: { tat: Math.max(tat, at) + interval, windowStart: counted.windowStart, used: counted.used + recipients, previous: counted.previous },
        result: { waitMs, at, booked: true, ...(limit !== undefined && { limit }) },
      };
    }, options);
  }
}

function countOf(row: Record<string, unknown> | undefined): WindowCount {
  return { windowStart: numberField(row, 'windowStart'), used: numberField(row, 'used'), previous: numberField(row, 'previous') };
}
