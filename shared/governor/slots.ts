import type { BlobLeaseClient } from '@azure/storage-blob';
import { delay } from '../abort.js';
import { MailError } from '../errors.js';
import type { Logger } from '../log.js';
import { stateError, statusOf, type StorageAccount } from '../state/storage.js';

/** The container of the slot blobs: `<scope>/slot-<n>`, one blob per concurrent request a mailbox allows. */
export const SLOTS_CONTAINER = 'mail-governor';

/**
 * Blob Storage's shortest lease (15-60 s, or infinite). A slot is leased for its request and renewed
 * while it is held, so the lease of an instance that crashed mid-request lapses after this and the
 * slot is never lost for longer. docs: https://learn.microsoft.com/rest/api/storageservices/lease-blob
 */
const LEASE_SECONDS = 15;
const RENEW_EVERY_MS = 5_000;
/**
 * A leased slot serves this process's next request too when it comes within LINGER_MS, for at most
 * REUSE_MAX_MS in all; then it is given back. A busy instance so pays storage once per several
 * requests, not twice per request, while the others' turn comes within seconds.
 */
const LINGER_MS = 250;
const REUSE_MAX_MS = 5_000;
/** Back-off between rounds when every slot is taken: full jitter, doubling up to the cap. */
const WAIT_BASE_MS = 25;
const WAIT_CAP_MS = 1_000;

export interface HeldSlots {
  /** Gives the slots back; never rejects (a lease that cannot be released lapses by itself). */
  release(): void;
  /** How long the request waited for them, in ms: 0 when they were free at once. */
  readonly waitedMs: number;
}

interface Slot {
  index: number;
  lease: BlobLeaseClient;
  acquiredAt: number;
  renew: NodeJS.Timeout;
  linger?: NodeJS.Timeout;
}

/**
 * At most `limit` requests in flight for one scope (an app and a mailbox) across every instance:
 * a request holds the lease of one of `limit` slot blobs while it runs. Inside one process a local
 * count keeps requests from asking storage for slots this process already holds.
 */
export class ConcurrencySlots {
  private inFlight = 0;
  private readonly localWaiters = new Set<() => void>();
  /** Indexes this process holds, lends out or is giving back: not worth asking storage for. */
  private readonly held = new Set<number>();
  private readonly idle: Slot[] = [];
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
        let got: Slot[] = [];
        try {
          got = this.idle.splice(0, wanted);
          got.forEach((slot) => clearTimeout(slot.linger));
          if (got.length < wanted) got.push(...(await this.tryLease(wanted - got.length, options.abortSignal, deadline)));
        } finally {
          if (got.length < wanted) {
            this.inFlight -= wanted;
            got.forEach((slot) => this.giveBack(slot));
          }
        }
        if (got.length === wanted) return this.holding(got, round === 0 ? 0 : performance.now() - started);
        options.abortSignal?.throwIfAborted();
      } else {
        // Every slot this process may take is in use here: wait for one of ours to come back.
        await this.localTurn(deadline, options.abortSignal);
        if (this.inFlight + wanted <= this.limit) continue;
      }
      const now = performance.now();
      if (now >= deadline) throw this.busy();
      await delay(Math.min(Math.random() * Math.min(WAIT_CAP_MS, WAIT_BASE_MS * 2 ** round), deadline - now), options.abortSignal);
    }
  }

  private busy(): MailError {
    return new MailError('ETHROTTLED', `all ${this.limit} concurrent Graph requests of ${this.scope} stayed in use for ${Math.round(this.options.maxWaitMs / 1000)} s`, {
      retryAfter: 5,
      hint: 'Other instances or operations keep this mailbox busy (Graph allows 4 concurrent requests per app and mailbox), or the storage account answers slowly; the request may be tried again.',
    });
  }

  /** Gives back the slots kept for reuse and waits for every pending release (the runtime's close). */
  async close(): Promise<void> {
    this.idle.splice(0).forEach((slot) => this.giveBack(slot));
    await Promise.all([...this.releasing]);
  }

  /**
   * Leases up to `wanted` free slots, trying them in random order; an empty list if not all. Slow
   * storage is waited for until the deadline, then the mailbox counts as busy: letting the request
   * through ungoverned would send it into the 429 the slots are there to avoid.
   */
  private async tryLease(wanted: number, abortSignal: AbortSignal | undefined, deadline: number): Promise<Slot[]> {
    const container = await this.account.container(SLOTS_CONTAINER);
    const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(deadline - performance.now())));
    const signal = abortSignal ? AbortSignal.any([abortSignal, timeout]) : timeout;
    const candidates = shuffle([...Array(this.limit).keys()].filter((i) => !this.held.has(i)));
    const got: Slot[] = [];
    for (const index of candidates) {
      if (got.length === wanted) break;
      const blob = container.getBlockBlobClient(`${this.scope}/slot-${index}`);
      const lease = blob.getBlobLeaseClient();
      this.held.add(index);
      try {
        if (!this.created.has(index)) {
          await blob.upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal: signal }).catch((error: unknown) => {
            // 409: it exists (and may be leased); 412: another instance made it first.
            if (statusOf(error) !== 409 && statusOf(error) !== 412) throw error;
          });
          this.created.add(index);
        }
        await lease.acquireLease(LEASE_SECONDS, { abortSignal: signal });
        got.push(this.slot(index, lease));
      } catch (error) {
        this.held.delete(index);
        if (statusOf(error) === 409) continue;
        got.forEach((slot) => this.giveBack(slot));
        if (statusOf(error) === 404) this.created.delete(index);
        abortSignal?.throwIfAborted();
        if (timeout.aborted) throw this.busy();
        throw stateError(error, `could not lease a Graph request slot of ${this.scope}`);
      }
    }
    if (got.length < wanted) {
      got.forEach((slot) => this.giveBack(slot));
      return [];
    }
    return got;
  }

  private slot(index: number, lease: BlobLeaseClient): Slot {
    const renew = setInterval(() => {
      lease.renewLease().catch((error: unknown) => this.options.logger?.warn({ operation: 'governor.renew', id: this.scope, outcome: 'error', status: statusOf(error) }));
    }, RENEW_EVERY_MS);
    renew.unref();
    return { index, lease, acquiredAt: performance.now(), renew };
  }

  private holding(got: Slot[], waitedMs: number): HeldSlots {
    let released = false;
    return {
      waitedMs,
      release: () => {
        if (released) return;
        released = true;
        this.inFlight -= got.length;
        const now = performance.now();
        for (const slot of got) {
          if (now - slot.acquiredAt >= REUSE_MAX_MS) {
            this.giveBack(slot);
            continue;
          }
          slot.linger = setTimeout(() => {
            const i = this.idle.indexOf(slot);
            if (i >= 0) this.giveBack(this.idle.splice(i, 1)[0]!);
          }, LINGER_MS);
          slot.linger.unref();
          this.idle.push(slot);
        }
        [...this.localWaiters].forEach((wake) => wake());
      },
    };
  }

  /** Releases the slot's lease off the request's path; the index is asked for again once storage has it back. */
  private giveBack(slot: Slot): void {
    clearInterval(slot.renew);
    clearTimeout(slot.linger);
    const pending = slot.lease.releaseLease().then(
      () => undefined,
      (error: unknown) => this.options.logger?.warn({ operation: 'governor.release', id: this.scope, outcome: 'error', status: statusOf(error) }),
    ).finally(() => {
      this.held.delete(slot.index);
      this.releasing.delete(pending);
    });
    this.releasing.add(pending);
  }

  private localTurn(deadline: number, abortSignal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.localWaiters.delete(done);
        abortSignal?.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        clearTimeout(timer);
        this.localWaiters.delete(done);
        reject(abortSignal!.reason);
      };
      const timer = setTimeout(done, Math.max(0, deadline - performance.now()));
      this.localWaiters.add(done);
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
