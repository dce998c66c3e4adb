import type { DeliveredMessage } from '../mail/incoming.js';
import type { PayloadStore } from '../state/blobStores.js';
import { stateError, type StorageAccount } from '../state/storage.js';
import type { DeliverOptions, MessageSink } from './types.js';

/**
 * A queue message is at most 64 KiB; the Functions queue trigger expects base64 by default
 * (host.json extensions.queues.messageEncoding), which makes 48 KiB of JSON 64 KiB on the wire.
 * docs: https://learn.microsoft.com/azure/storage/queues/storage-queues-introduction
 */
export const QUEUE_JSON_LIMIT_BYTES = 48 * 1024;

/** What a consumer finds on the queue in place of a message too large for it. */
export interface ClaimCheck {
  id: string;
  claimCheck: { container: string; name: string };
  /** A redelivery on demand (POST /api/profiles/{name}/redeliver). */
  redelivery?: true;
}

/**
 * Puts each message's JSON, base64-encoded, on a Storage queue. A JSON over the queue's size
 * limit goes to a blob in `mail-payloads`, and the queue message carries its reference.
 */
export class QueueSink implements MessageSink {
  readonly kind = 'queue' as const;

  constructor(
    private readonly account: StorageAccount,
    private readonly queueName: string,
    private readonly payloads: PayloadStore,
  ) {}

  async deliver(message: DeliveredMessage, options: DeliverOptions = {}): Promise<void> {
    let json = JSON.stringify(options.redelivery ? { ...message, redelivery: true } : message);
    if (Buffer.byteLength(json) > QUEUE_JSON_LIMIT_BYTES) {
      const blob = await this.payloads.putText(`${message.profile}/${message.id}.json`, json, 'application/json', options);
      const check: ClaimCheck = { id: message.id, claimCheck: blob, ...(options.redelivery && { redelivery: true }) };
      json = JSON.stringify(check);
    }
    const queue = await this.account.queue(this.queueName);
    try {
      await queue.sendMessage(Buffer.from(json).toString('base64'), { abortSignal: options.abortSignal });
    } catch (error) {
      throw stateError(error, `could not put message ${message.id} on queue ${this.queueName}`);
    }
  }
}
