import type { Logger } from '../log.js';
import { STATE_NAMES, stateError, statusOf, type StorageAccount } from './storage.js';

export interface MailboxLeaseOptions {
  /** Blob lease duration (15-60 s, or infinite); a crashed worker's lease lapses after it. @default 60 */
  durationSeconds?: number;
  /** How often a held lease is renewed while polling. @default 20_000 */
  renewEveryMs?: number;
  logger?: Logger;
}

/** A held lease. `signal` aborts when a renewal fails: the mailbox may belong to another worker now. */
export interface MailboxLease {
  readonly signal: AbortSignal;
  /** Never rejects: a lease that cannot be released lapses after its duration. */
  release(options?: { abortSignal?: AbortSignal }): Promise<void>;
}

/**
 * One blob lease per mailbox on container `mail-leases`, so that no two workers, on any
 * number of instances, poll one mailbox at once. Blob leases are exclusive and expire by
 * themselves, which is what makes a crashed worker harmless.
 * docs: https://learn.microsoft.com/rest/api/storageservices/lease-blob
 */
export class MailboxLeases {
  private readonly durationSeconds: number;
  private readonly renewEveryMs: number;

  constructor(private readonly account: StorageAccount, private readonly options: MailboxLeaseOptions = {}) {
    this.durationSeconds = options.durationSeconds ?? 60;
    this.renewEveryMs = options.renewEveryMs ?? 20_000;
  }

  /** The lease on `mailbox`, or undefined when another worker holds it. */
  async acquire(mailbox: string, options: { abortSignal?: AbortSignal } = {}): Promise<MailboxLease | undefined> {
    const container = await this.account.container(STATE_NAMES.leases);
    const blob = container.getBlockBlobClient(encodeURIComponent(mailbox.toLowerCase()));
    const leaseClient = blob.getBlobLeaseClient();
    const acquire = () => leaseClient.acquireLease(this.durationSeconds, { abortSignal: options.abortSignal });
    try {
      try {
        await acquire();
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
        await blob.upload('', 0, { conditions: { ifNoneMatch: '*' }, abortSignal: options.abortSignal }).catch((created: unknown) => {
          // Another worker created it first: the lease decides who polls.
          if (statusOf(created) !== 409 && statusOf(created) !== 412) throw created;
        });
        await acquire();
      }
    } catch (error) {
      if (statusOf(error) === 409) return undefined;
      throw stateError(error, `could not lease mailbox ${mailbox}`);
    }

    const lost = new AbortController();
    const timer = setInterval(() => {
      // A renewal that never answers is as bad as a refused one: the lease lapses and another
      // worker may take the mailbox while this poll goes on. So each must answer before the next is due.
      leaseClient.renewLease({ abortSignal: AbortSignal.timeout(this.renewEveryMs) }).catch((error: unknown) => {
        clearInterval(timer);
        this.options.logger?.warn({ operation: 'lease.renew', id: mailbox, outcome: 'error', status: statusOf(error) });
        lost.abort(stateError(error, `lost the lease on mailbox ${mailbox}`));
      });
    }, this.renewEveryMs);
    timer.unref();

    return {
      signal: lost.signal,
      release: async ({ abortSignal } = {}) => {
        clearInterval(timer);
        if (lost.signal.aborted) return;
        // A lease that cannot be released lapses after durationSeconds; the poll's result stands.
        await leaseClient.releaseLease({ abortSignal }).catch((error: unknown) => {
          this.options.logger?.warn({ operation: 'lease.release', id: mailbox, outcome: 'error', status: statusOf(error) });
        });
      },
    };
  }
}
