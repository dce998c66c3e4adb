import type { BlobLeaseClient } from '@azure/storage-blob';
import { delay } from '../abort.js';
import { MailError } from '../errors.js';
import type { Logger } from '../log.js';
import { stateError, statusOf, type StorageAccount } from '../state/storage.js';

/** The container of the slot blobs: `<scope>/slot-<n>`, one blob per concurrent request a mailbox allows. */
export const SLOTS_CONTAINER = 'mail-governor';

/**
 * Blob Storage's shortest lease (15-60 s, or infinite). A request's slot is leased for it and renewed
 * while the request lasts; the lease of an instance that crashed mid-request lapses after this,
 * so a slot is never lost for longer. docs: https://learn.microsoft.com/rest/api/storageservices/lease-blob
 */
const LEASE_SECONDS = 15;
const RENEW_EVERY_MS = 5_000;
/** Back-off between rounds when every slot is taken: full jitter, doubling up to the cap. */
const WAIT_BASE_MS = 25;
const WAIT_CAP_MS = 1_000;
const STORAGE_TIMEOUT_MS = 5_000;

export interface HeldSlots {
  /** Gives the slots back; never rejects (a lease that cannot be released lapses by itself). */
  release(): void;
  /** How long the request waited for them, in ms: 0 when they were free at once. */
  readonly waitedMs: number;
}

/**
 * At most `limit` requests in flight for one scope (an app and a mailbox) across every instance:
 * a request holds the lease of one of `limit` slot blobs while it runs. Inside one process a local
 * count keeps requests from asking storage for slots this process already holds.
 */
export class ConcurrencySlots {
  private inFlight = 0;
  private readonly localWaiters: Array<() => void> = [];
  private readonly held = new Set<number>();
  private readonly created = new Set<number>();
  private readonly releasing = new Set<Promise<void>>();

  constructor(
    private readonly account: StorageAccount,
    private readonly scope: string,
    private readonly limit: number,
    private readonly options: { logger?: Logger; maxWaitMs: number },
  ) {}

  /**
   * Takes `count` slots (at most the limit), all or none: a partial hold could deadlock two
   * instances that each hold some. Waits with jittered back-off while they are taken, until
   * `abortSignal` or maxWaitMs; then ETHROTTLED (the mailbox is busy), which a caller retries.
   */
  async acquire(count: number, options: { abortSignal?: AbortSignal } = {}): Promise<HeldSlots> {
    const wanted = Math.min(Math.max(1, count), this.limit);
    const started = performance.now();
    const deadline = started + this.options.maxWaitMs;
    for (let round = 0; ; round++) {
      options.abortSignal?.throwIfAborted();
      if (this.inFlight + wanted <= this.limit) {
        this.inFlight += wanted;
        let got: Array<{ index: number; lease: BlobLeaseClient }> = [];
        try {
          got = await this.tryLease(wanted, options.abortSignal);
        } finally {
          if (got.length < wanted) this.inFlight -= wanted;
        }
        if (got.length === wanted) return this.holding(got, round === 0 ? 0 : performance.now() - started);
        options.abortSignal?.throwIfAborted();
      } else {
        // Every slot this process may take is in use here: wait for one of ours to come back.
        await this.localTurn(deadline, options.abortSignal);
        if (this.inFlight + wanted <= this.limit) continue;
      }
      const now = performance.now();
      if (now >= deadline) {
        throw new MailError('ETHROTTLED', `all ${this.limit} concurrent Graph requests of ${this.scope} stayed in use for ${Math.round(this.options.maxWaitMs / 1000)} s`, {
          retryAfter: 5,
          hint: 'Other instances or operations keep this mailbox busy (Graph allows 4 concurrent requests per app and mailbox); the request may be tried again.',
        });
      }
      const backoff = Math.random() * Math.min(WAIT_CAP_MS, WAIT_BASE_MS * 2 ** round);
      await delay(Math.min(backoff, deadline - now), options.abortSignal);
    }
  }

  /** Waits for every pending release (the runtime's close). */
  async close(): Promise<void> {
    await Promise.all([...this.releasing]);
  }

  /** Leases up to `wanted` free slots, trying them in random order; gives back what it got if not all. */
  private async tryLease(wanted: number, abortSignal: AbortSignal | undefined): Promise<Array<{ index: number; lease: BlobLeaseClient }>> {
    const container = await this.account.container(SLOTS_CONTAINER);
    // Storage that does not answer must not hold the request up for long: the governor then lets it go ungoverned.
    const timeout = AbortSignal.timeout(STORAGE_TIMEOUT_MS);
    abortSignal = abortSignal ? AbortSignal.any([abortSignal, timeout]) : timeout;
    const candidates = shuffle([...Array(this.limit).keys()].filter((i) => !this.held.has(i)));
    const got: Array<{ index: number; lease: BlobLeaseClient }> = [];
    for (const index of candidates) {
      if (got.length === wanted) break;
      const blob = container.getBlockBlobClient(`${this.scope}/slot-${index}`);
      const lease = blob.getBlobLeaseClient();
      this.held.add(index);
      try {
        if (!this.created.has(index)) {
          await blob.upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal }).catch((error: unknown) => {
            // 409: it exists (and may be leased); 412: another instance made it first.
            if (statusOf(error) !== 409 && statusOf(error) !== 412) throw error;
          });
          this.created.add(index);
        }
        await lease.acquireLease(LEASE_SECONDS, { abortSignal });
        got.push({ index, lease });
      } catch (error) {
        this.held.delete(index);
        if (statusOf(error) === 409) continue;
        this.giveBack(got);
        if (statusOf(error) === 404) this.created.delete(index);
        throw stateError(error, `could not lease a Graph request slot of ${this.scope}`);
      }
    }
    if (got.length < wanted) {
      this.giveBack(got);
      return [];
    }
    return got;
  }

  private holding(got: Array<{ index: number; lease: BlobLeaseClient }>, waitedMs: number): HeldSlots {
    const timer = setInterval(() => {
      for (const { lease } of got) {
        lease.renewLease().catch((error: unknown) => this.options.logger?.warn({ operation: 'governor.renew', id: this.scope, outcome: 'error', status: statusOf(error) }));
      }
    }, RENEW_EVERY_MS);
    timer.unref();
    let released = false;
    return {
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        // Off the request's path: the answer is already there. The local count drops once storage
        // has the slots back, so that a waiting request here does not find them still leased.
        this.giveBack(got, () => {
          this.inFlight -= got.length;
          this.localWaiters.splice(0).forEach((wake) => wake());
        });
      },
    };
  }

  private giveBack(got: Array<{ index: number; lease: BlobLeaseClient }>, then?: () => void): void {
    if (got.length === 0) {
      then?.();
      return;
    }
    const pending = Promise.all(got.map(({ index, lease }) =>
      lease.releaseLease().catch((error: unknown) => {
        this.options.logger?.warn({ operation: 'governor.release', id: this.scope, outcome: 'error', status: statusOf(error) });
      }).finally(() => this.held.delete(index)),
    )).then(() => then?.());
    this.releasing.add(pending);
    void pending.finally(() => this.releasing.delete(pending));
  }

  private localTurn(deadline: number, abortSignal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        abortSignal?.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        clearTimeout(timer);
        const i = this.localWaiters.indexOf(done);
        if (i >= 0) this.localWaiters.splice(i, 1);
        reject(abortSignal!.reason);
      };
      const timer = setTimeout(() => {
        const i = this.localWaiters.indexOf(done);
        if (i >= 0) this.localWaiters.splice(i, 1);
        done();
      }, Math.max(0, deadline - performance.now()));
      this.localWaiters.push(done);
      abortSignal?.addEventListener('abort', aborted, { once: true });
    });
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
