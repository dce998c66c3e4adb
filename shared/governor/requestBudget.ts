import { MailError } from '../errors.js';
import { tableKey } from '../state/keys.js';
import type { StorageAccount } from '../state/storage.js';
import { changeRow, numberField } from './governorTable.js';
import { estimate, rollTo, waitFor, type WindowCount } from './slidingWindow.js';

/** Graph's Outlook limit: 10,000 requests per 10 minutes per app and mailbox. https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits */
export const BUDGET_WINDOW_MS = 10 * 60 * 1000;

/** What the budget row of one app and mailbox holds, as the health report shows it. */
export interface BudgetState {
  limit: number;
  /** Requests counted in the sliding 10 minutes (reserved by some instance, used or about to be). */
  used: number;
  left: number;
  /** Throttled answers Graph gave anyway, requests that waited for a slot and how long, since `since`. */
  throttled: number;
  waits: number;
  waitSeconds: number;
  since: string | null;
}

interface Stats {
  throttled: number;
  waits: number;
  waitMs: number;
}

/**
 * The request budget of one app and mailbox, shared by every instance in one table row updated with
 * its ETag. An instance reserves requests in small chunks, so that not every Graph request writes
 * storage; what it reserved and did not use when it stops stays counted (the budget errs on the
 * safe side). The same write carries this instance's counts of waits and throttled answers.
 */
export class RequestBudget {
  private reserved = 0;
  private reservedIn = -1;
  private reserving?: Promise<void>;
  private lastLeft?: number;
  private pending: Stats = { throttled: 0, waits: 0, waitMs: 0 };
  private readonly key: { partitionKey: string; rowKey: string };
  private readonly chunk: number;

  constructor(
    private readonly account: StorageAccount,
    scope: string,
    private readonly limit: number,
    private readonly now: () => number = Date.now,
  ) {
    this.key = { partitionKey: tableKey(`graph|${scope}`), rowKey: 'budget' };
    // 20 at the default 10,000: one write per 20 requests, and at most 20 per instance left unused.
    this.chunk = Math.max(1, Math.min(20, Math.floor(limit / 500)));
  }

  /** The requests left, as this instance last saw them; undefined before its first reservation. */
  get left(): number | undefined {
    return this.lastLeft;
  }

  /** Takes `cost` requests from the budget, or throws ETHROTTLED with the seconds until they fit. */
  async take(cost: number, options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    for (;;) {
      const window = Math.floor(this.now() / BUDGET_WINDOW_MS);
      if (this.reservedIn !== window) this.reserved = 0;
      if (this.reserved >= cost) {
        this.reserved -= cost;
        return;
      }
      this.reserving ??= this.reserve(cost, options).finally(() => (this.reserving = undefined));
      await this.reserving;
    }
  }

  noteWait(ms: number): void {
    this.pending.waits++;
    this.pending.waitMs += ms;
  }

  /** A throttled answer from Graph: written at once, since it is what the health report is for. */
  noteThrottled(): Promise<void> {
    this.pending.throttled++;
    return this.flush();
  }

  /** Writes the counts not written yet. */
  async flush(options: { abortSignal?: AbortSignal } = {}): Promise<void> {
    const stats = this.takePending();
    if (stats.throttled + stats.waits === 0) return;
    try {
      await changeRow(this.account, this.key, (row) => ({ write: { ...this.rowFields(row, countOf(row)), ...added(row, stats) }, result: undefined }), options);
    } catch (error) {
      this.addPending(stats);
      throw error;
    }
  }

  async read(options: { abortSignal?: AbortSignal } = {}): Promise<BudgetState> {
    const state = await changeRow(this.account, this.key, (row) => ({ result: this.stateOf(row) }), options);
    this.lastLeft = state.left;
    return state;
  }

  private async reserve(cost: number, options: { abortSignal?: AbortSignal }): Promise<void> {
    const wanted = Math.max(this.chunk, cost);
    const stats = this.takePending();
    type Outcome = { granted: number; window: number; left: number } | { waitMs: number };
    let outcome: Outcome;
    try {
      outcome = await changeRow<Outcome>(this.account, this.key, (row) => {
        const now = this.now();
        const count = rollTo(countOf(row), now, BUDGET_WINDOW_MS);
        const free = Math.floor(this.limit - estimate(count, now, BUDGET_WINDOW_MS));
        const stat = added(row, stats);
        if (free < cost) {
          const result = { waitMs: waitFor(count, cost, this.limit, now, BUDGET_WINDOW_MS) };
          return stats.throttled + stats.waits > 0 ? { write: { ...this.rowFields(row, count), ...stat }, result } : { result };
        }
        const granted = Math.min(wanted, free);
        const next = { ...count, used: count.used + granted };
        return { write: { ...this.rowFields(row, next), ...stat }, result: { granted, window: Math.floor(now / BUDGET_WINDOW_MS), left: free - granted } };
      }, options);
    } catch (error) {
      this.addPending(stats);
      throw error;
    }
    if ('waitMs' in outcome) {
      this.lastLeft = 0;
      const seconds = Math.max(1, Math.ceil(outcome.waitMs / 1000));
      throw new MailError('ETHROTTLED', `the Graph request budget of this mailbox (${this.limit} per 10 minutes) is spent`, {
        retryAfter: seconds,
        hint: `Every instance together made ${this.limit} Graph requests for this app and mailbox within 10 minutes (graph.requestsPer10Minutes); more fit in ${seconds} s.`,
      });
    }
    if (this.reservedIn !== outcome.window) this.reserved = 0;
    this.reserved += outcome.granted;
    this.reservedIn = outcome.window;
    this.lastLeft = outcome.left;
  }

  private rowFields(row: Record<string, unknown> | undefined, count: WindowCount): Record<string, unknown> {
    return {
      windowStart: count.windowStart,
      used: count.used,
      previous: count.previous,
      since: typeof row?.since === 'string' ? row.since : new Date(this.now()).toISOString(),
    };
  }

  private stateOf(row: Record<string, unknown> | undefined): BudgetState {
    const now = this.now();
    const used = Math.ceil(estimate(countOf(row), now, BUDGET_WINDOW_MS));
    return {
      limit: this.limit,
      used,
      left: Math.max(0, this.limit - used),
      throttled: numberField(row, 'throttled'),
      waits: numberField(row, 'waits'),
      waitSeconds: Math.round(numberField(row, 'waitMs')) / 1000,
      since: typeof row?.since === 'string' ? row.since : null,
    };
  }

  private takePending(): Stats {
    const stats = this.pending;
    this.pending = { throttled: 0, waits: 0, waitMs: 0 };
    return stats;
  }

  private addPending(stats: Stats): void {
    this.pending.throttled += stats.throttled;
    this.pending.waits += stats.waits;
    this.pending.waitMs += stats.waitMs;
  }
}

function countOf(row: Record<string, unknown> | undefined): WindowCount {
  return { windowStart: numberField(row, 'windowStart'), used: numberField(row, 'used'), previous: numberField(row, 'previous') };
}

function added(row: Record<string, unknown> | undefined, stats: Stats): Record<string, number> {
  return {
    throttled: numberField(row, 'throttled') + stats.throttled,
    waits: numberField(row, 'waits') + stats.waits,
    waitMs: Math.round(numberField(row, 'waitMs') + stats.waitMs),
  };
}
