import { IdempotencyStore } from './idempotencyStore.js';
import { OutboxStore } from './outboxStore.js';
import { SendQueue } from './sendQueue.js';
import { SendStatusStore } from './sendStatusStore.js';
import { storageAccount, type StorageAccount } from './storage.js';

/** Everything queued sending and idempotency keep in storage, for one account. */
export interface SendState {
  account: StorageAccount;
  outbox: OutboxStore;
  statuses: SendStatusStore;
  idempotency: IdempotencyStore;
  queue: SendQueue;
}

const states = new WeakMap<StorageAccount, SendState>();

/** The send state in `env.AzureWebJobsStorage`, created once per process. */
export function sendState(env: NodeJS.ProcessEnv): SendState {
  const account = storageAccount(env);
  let state = states.get(account);
  if (!state) {
    state = { account, outbox: new OutboxStore(account), statuses: new SendStatusStore(account), idempotency: new IdempotencyStore(account), queue: new SendQueue(account) };
    states.set(account, state);
  }
  return state;
}
