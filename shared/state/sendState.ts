import { IdempotencyStore } from './idempotencyStore.js';
import { OutboxStore } from './outboxStore.js';
import { SendQueue } from './sendQueue.js';
import { SendStatusStore } from './sendStatusStore.js';
import type { StorageAccount } from './storage.js';

/** Everything queued sending and idempotency keep in storage, for one account. */
export interface SendState {
  account: StorageAccount;
  outbox: OutboxStore;
  statuses: SendStatusStore;
  idempotency: IdempotencyStore;
  queue: SendQueue;
}

export function createSendState(account: StorageAccount): SendState {
  return { account, outbox: new OutboxStore(account), statuses: new SendStatusStore(account), idempotency: new IdempotencyStore(account), queue: new SendQueue(account) };
}
