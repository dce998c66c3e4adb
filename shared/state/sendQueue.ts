import { stateError, type StorageAccount } from './storage.js';

/** The queue the send function fills and sendWorker reads. */
import { SEND_QUEUE } from './queueNames.js';

export { SEND_QUEUE };

/** One message on `mail-send`: send the outbox entry with this id. */
export interface SendQueueItem {
  id: string;
  /** When the message has its place in the mailbox's send rate (ms since the epoch): it is sent then without asking the pacer again. */
  pacedAt?: number;
}

/**
 * The Storage service's limit on how long a message may stay invisible (7 days).
 * docs: https://learn.microsoft.com/rest/api/storageservices/put-message
 */
const MAX_VISIBILITY_SECONDS = 7 * 24 * 60 * 60;

export class SendQueue {
  constructor(private readonly account: StorageAccount) {}

  /**
   * Puts `item` on the queue, invisible for `delaySeconds` (a retry's back-off or
   * Retry-After), and returns when the service will show it to a worker. Base64, because
   * host.json sets the queue trigger's messageEncoding to base64.
   */
  async enqueue(item: SendQueueItem, options: { delaySeconds?: number; abortSignal?: AbortSignal } = {}): Promise<{ nextVisibleOn: Date }> {
    const queue = await this.account.queue(SEND_QUEUE);
    const visibilityTimeout = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(options.delaySeconds ?? 0)));
    try {
      const sent = await queue.sendMessage(Buffer.from(JSON.stringify(item)).toString('base64'), { visibilityTimeout, abortSignal: options.abortSignal });
      return { nextVisibleOn: sent.nextVisibleOn };
    } catch (error) {
      throw stateError(error, `could not queue send ${item.id}`);
    }
  }
}
