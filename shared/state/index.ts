import { DeadLetterStore, PayloadStore } from './blobStores.js';
import { CursorStore } from './cursorStore.js';
import { DedupeStore } from './dedupeStore.js';
import { MailboxLeases } from './mailboxLease.js';
import { storageAccount, type StorageAccount } from './storage.js';

/** Everything a poll keeps in storage, for one account. */
export interface ReceiveState {
  account: StorageAccount;
  cursors: CursorStore;
  dedupe: DedupeStore;
  leases: MailboxLeases;
  deadLetters: DeadLetterStore;
  payloads: PayloadStore;
}

const states = new WeakMap<StorageAccount, ReceiveState>();

/** The receive state in `env.AzureWebJobsStorage`, created once per process. */
export function receiveState(env: NodeJS.ProcessEnv): ReceiveState {
  const account = storageAccount(env);
  let state = states.get(account);
  if (!state) {
    state = {
      account,
      cursors: new CursorStore(account),
      dedupe: new DedupeStore(account),
      leases: new MailboxLeases(account),
      deadLetters: new DeadLetterStore(account),
      payloads: new PayloadStore(account),
    };
    states.set(account, state);
  }
  return state;
}
export { sendState, type SendState } from './sendState.js';
export { pollStatusStore, type PollStatusRecord, type StoredPollStatus } from './pollStatusStore.js';
