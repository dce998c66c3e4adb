import type { StorageConnection } from '../config/storageSettings.js';
import { DeadLetterStore, PayloadStore, RetainedStore } from './blobStores.js';
import { CursorStore } from './cursorStore.js';
import { DedupeStore } from './dedupeStore.js';
import { MailboxLeases } from './mailboxLease.js';
import { PollStatusStore } from './pollStatusStore.js';
import { createSendState, type SendState } from './sendState.js';
import { SubscriptionStore } from './subscriptionStore.js';
import { storageAccount, type StorageAccount, type StorageClientOptions } from './storage.js';

/** Everything a poll keeps in storage, for one account. */
export interface ReceiveState {
  account: StorageAccount;
  cursors: CursorStore;
  dedupe: DedupeStore;
  leases: MailboxLeases;
  deadLetters: DeadLetterStore;
  payloads: PayloadStore;
  retained: RetainedStore;
}

export function createReceiveState(account: StorageAccount): ReceiveState {
  return {
    account,
    cursors: new CursorStore(account),
    dedupe: new DedupeStore(account),
    leases: new MailboxLeases(account),
    deadLetters: new DeadLetterStore(account),
    payloads: new PayloadStore(account),
    retained: new RetainedStore(account),
  };
}

/**
 * The app's state in one storage account (AzureWebJobsStorage, or its identity-based settings), each part made on first use and
 * kept: the runtime holds one, so every invocation of a process shares its clients. ECONFIG naming
 * the setting when it is not set, at the first use: a CLI send through the file transport needs none.
 */
export class MailState {
  private storage?: StorageAccount;
  private receiveParts?: ReceiveState;
  private sendParts?: SendState;
  private statuses?: PollStatusStore;
  private subscriptionStore?: SubscriptionStore;

  constructor(
    private readonly connection: StorageConnection | string | undefined,
    private readonly options: { clientOptions?: StorageClientOptions } = {},
  ) {}

  get account(): StorageAccount {
    this.storage ??= storageAccount(this.connection, this.options.clientOptions);
    return this.storage;
  }

  get receive(): ReceiveState {
    this.receiveParts ??= createReceiveState(this.account);
    return this.receiveParts;
  }

  get send(): SendState {
    this.sendParts ??= createSendState(this.account);
    return this.sendParts;
  }

  get pollStatus(): PollStatusStore {
    this.statuses ??= new PollStatusStore(this.account);
    return this.statuses;
  }

  /** Push profiles' subscriptions and poll-pending markers. */
  get subscriptions(): SubscriptionStore {
    this.subscriptionStore ??= new SubscriptionStore(this.account);
    return this.subscriptionStore;
  }
}

export type { SendState } from './sendState.js';
export type { PollStatusRecord, StoredPollStatus } from './pollStatusStore.js';
export type { SubscriptionRecord, StoredSubscription } from './subscriptionStore.js';
