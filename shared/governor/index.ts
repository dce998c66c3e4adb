import type { Profile } from '../config/profiles.js';
import { isMailError, MailError } from '../errors.js';
import type { Logger } from '../log.js';
import type { StorageAccount } from '../state/storage.js';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/index.js';
import type { RequestGovernor } from '../transports/types.js';
import { RequestBudget, type BudgetState } from './requestBudget.js';
import { SendPacer, type PaceDecision, type PaceState, type SendPace } from './sendPacer.js';
import { ConcurrencySlots } from './slots.js';

export type { BudgetState } from './requestBudget.js';
export type { PaceDecision, PaceState, SendPace } from './sendPacer.js';

/**
 * How long the budget's and the pacer's storage requests may take before the request or send goes
 * without them: the governor is there to keep mail flowing within Microsoft's limits, not to stop it
 * when storage stutters (Graph's 429 and the retries still apply then). Slots wait for storage until
 * their own deadline instead: a request let through without one meets MailboxConcurrency.
 */
const STORAGE_TIMEOUT_MS = 5_000;
/** How long a Graph request waits for a slot before it is ETHROTTLED (a queued send is retried, a sync one answers 429). */
const MAX_SLOT_WAIT_MS = 60_000;

export interface GovernorOptions {
  telemetry?: Telemetry;
  logger?: Logger;
  /** @default 60 s */
  maxSlotWaitMs?: number;
}

/** The governor's view of one profile, for GET /api/health/profiles. */
export interface GovernorHealth {
  profile: string;
  mailbox: string;
  graph?: BudgetState & { maxConcurrent: number };
  sending?: PaceState;
  /** Why the state could not be read (storage), instead of the parts above. */
  error?: string;
}

/**
 * Microsoft's per-mailbox limits kept by every instance together, in the app's storage account:
 * per app and mailbox, at most `graph.maxConcurrent` Graph requests in flight (leased slot blobs)
 * and `graph.requestsPer10Minutes` (a budget row); per sending mailbox, `send.ratePerMinute`
 * messages and `send.recipientsPerDay` recipients (a pace row). One per runtime; each part made
 * on first use and kept.
 */
export class MailboxGovernor {
  private readonly graphScopes = new Map<string, GraphScope>();
  private readonly pacers = new Map<string, SendPacer>();
  private readonly telemetry: Telemetry;
  private readonly maxSlotWaitMs: number;

  constructor(private readonly account: () => StorageAccount, private readonly options: GovernorOptions = {}) {
    this.telemetry = options.telemetry ?? NO_TELEMETRY;
    this.maxSlotWaitMs = options.maxSlotWaitMs ?? MAX_SLOT_WAIT_MS;
    this.telemetry.observe('mail.governor.budget_left', () =>
      [...this.graphScopes.values()].flatMap((s) => (s.budget.left === undefined ? [] : [{ value: s.budget.left, attributes: { 'mail.profile': s.profile } }])));
  }

  /** The profile's Graph request governor; undefined when its `graph.governor` is false. */
  graph(profile: Profile): RequestGovernor | undefined {
    if (!profile.graph.governor) return undefined;
    const scope = this.graphScope(profile);
    return {
      admit: (options) => this.admit(scope, options),
      throttled: () => {
        scope.budget.noteThrottled().catch((error: unknown) => this.ungoverned(scope.profile, 'throttled', error));
      },
    };
  }

  /**
   * This message's place in the send rate of the profile's mailbox: the wait until it (0: now),
   * kept for it when it is at most `maxWaitMs` away (a queued send: any wait, on the queue; a sync
   * one: a few seconds). Only Graph and SMTP sends are paced.
   */
  async pace(profile: Profile, recipients: number, options: { maxWaitMs: number; abortSignal?: AbortSignal }): Promise<PaceDecision> {
    if (!profile.send || (profile.send.via !== 'graph' && profile.send.via !== 'smtp')) return { waitMs: 0, at: Date.now(), booked: true };
    const abortSignal = bounded(options.abortSignal);
    try {
      return await this.pacer(profile).book(paceOf(profile), recipients, { maxWaitMs: options.maxWaitMs, abortSignal });
    } catch (error) {
      if (isMailError(error) && error.code === 'ETOO_MANY_RECIPIENTS') throw error;
      options.abortSignal?.throwIfAborted();
      this.ungoverned(profile.name, 'pace', error);
      return { waitMs: 0, at: Date.now(), booked: true };
    }
  }

  /** Counts a send the pacer held back: on the queue until its place (queued), or answered 429 (sync). */
  deferred(profile: Profile, decision: PaceDecision, mode: 'sync' | 'queued'): void {
    const attributes = { 'mail.profile': profile.name, 'mail.send.mode': mode, 'mail.governor.limit': decision.limit ?? 'send_rate' };
    this.telemetry.count('mail.governor.deferred', attributes);
    this.telemetry.record('mail.governor.waits', decision.waitMs / 1000, attributes);
  }

  /** Each governed profile's budget, concurrency and pace as storage holds them (every instance's). */
  async health(profiles: Iterable<Profile>, options: { abortSignal?: AbortSignal } = {}): Promise<GovernorHealth[]> {
    const governed = [...profiles].filter((p) => usesGraph(p) && p.graph.governor || p.send?.via === 'graph' || p.send?.via === 'smtp');
    return Promise.all(governed.map(async (profile): Promise<GovernorHealth> => {
      try {
        const graph = usesGraph(profile) && profile.graph.governor
          ? { ...(await this.graphScope(profile).budget.read(options)), maxConcurrent: profile.graph.maxConcurrent }
          : undefined;
        const sending = profile.send?.via === 'graph' || profile.send?.via === 'smtp' ? await this.pacer(profile).read(paceOf(profile), options) : undefined;
        return { profile: profile.name, mailbox: profile.mailbox, ...(graph && { graph }), ...(sending && { sending }) };
      } catch (error) {
        return { profile: profile.name, mailbox: profile.mailbox, error: isMailError(error) ? `${error.code}: ${error.message}` : 'ESTATE' };
      }
    }));
  }

  /** Writes the counts not yet written and waits for the slots being given back. */
  async close(): Promise<void> {
    await Promise.all([...this.graphScopes.values()].map(async (s) => {
      await s.budget.flush({ abortSignal: AbortSignal.timeout(STORAGE_TIMEOUT_MS) }).catch(() => undefined);
      await s.slots.close();
    }));
  }

  private async admit(scope: GraphScope, options: { cost: number; abortSignal?: AbortSignal }): Promise<{ release(): void }> {
    const abortSignal = bounded(options.abortSignal);
    try {
      await scope.budget.take(options.cost, { abortSignal });
    } catch (error) {
      if (isMailError(error) && error.code === 'ETHROTTLED') {
        this.telemetry.count('mail.governor.deferred', { 'mail.profile': scope.profile, 'mail.governor.limit': 'budget' });
        throw error;
      }
      options.abortSignal?.throwIfAborted();
      this.ungoverned(scope.profile, 'budget', error);
    }
    try {
      // The slot wait has its own bound (maxSlotWaitMs), slow storage included; only the caller's signal ends it sooner.
      const held = await scope.slots.acquire(options.cost, { abortSignal: options.abortSignal });
      if (held.waitedMs > 0) {
        scope.budget.noteWait(held.waitedMs);
        this.telemetry.record('mail.governor.waits', held.waitedMs / 1000, { 'mail.profile': scope.profile, 'mail.governor.limit': 'concurrency' });
      }
      return held;
    } catch (error) {
      options.abortSignal?.throwIfAborted();
      if (!(error instanceof MailError) || error.code === 'ETHROTTLED') throw error;
      this.ungoverned(scope.profile, 'slot', error);
      return { release: () => {} };
    }
  }

  private graphScope(profile: Profile): GraphScope {
    const scope = `${encodeURIComponent((profile.clientId ?? appOf(profile)).toLowerCase())}/${encodeURIComponent(profile.mailbox.toLowerCase())}`;
    const key = `${scope}|${profile.graph.maxConcurrent}|${profile.graph.requestsPer10Minutes}`;
    let found = this.graphScopes.get(key);
    if (!found) {
      const account = this.account();
      found = {
        profile: profile.name,
        slots: new ConcurrencySlots(account, scope, profile.graph.maxConcurrent, { logger: this.options.logger, maxWaitMs: this.maxSlotWaitMs }),
        budget: new RequestBudget(account, scope, profile.graph.requestsPer10Minutes),
      };
      this.graphScopes.set(key, found);
    }
    return found;
  }

  private pacer(profile: Profile): SendPacer {
    const mailbox = profile.mailbox.toLowerCase();
    let pacer = this.pacers.get(mailbox);
    if (!pacer) {
      pacer = new SendPacer(this.account(), mailbox);
      this.pacers.set(mailbox, pacer);
    }
    return pacer;
  }

  private ungoverned(profile: string, part: string, error: unknown): void {
    this.options.logger?.warn({ operation: `governor.${part}`, profile, outcome: 'error', reason: 'ungoverned', code: isMailError(error) ? error.code : 'ESTATE', error: error instanceof Error ? error.message : String(error) });
  }
}

interface GraphScope {
  profile: string;
  slots: ConcurrencySlots;
  budget: RequestBudget;
}

function paceOf(profile: Profile): SendPace {
  return { ratePerMinute: profile.send?.ratePerMinute ?? 30, recipientsPerDay: profile.send?.recipientsPerDay ?? 10_000 };
}

function usesGraph(profile: Profile): boolean {
  return profile.send?.via === 'graph' || profile.receive?.via === 'graph';
}

/** The app of a profile without a clientId (a managed identity's own), for the scope Graph counts per app. */
function appOf(profile: Profile): string {
  return profile.auth.type === 'managedIdentity' ? profile.auth.clientId ?? 'managed-identity' : 'app';
}

function bounded(abortSignal: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(STORAGE_TIMEOUT_MS);
  return abortSignal ? AbortSignal.any([abortSignal, timeout]) : timeout;
}
