import type { DeliveredMessage } from '../mail/incoming.js';

/**
 * Where a profile's received messages go. `deliver` resolves once the target acknowledged
 * the message (the receive cursor advances only then). It throws ESINK_REJECTED when the
 * target refuses this message for good (it is dead-lettered, the poll goes on), and any
 * other error when delivery may work later (the poll stops; the message comes again).
 */
export interface MessageSink {
  readonly kind: 'webhook' | 'queue';
  deliver(message: DeliveredMessage, options?: DeliverOptions): Promise<void>;
}

export interface DeliverOptions {
  abortSignal?: AbortSignal;
  /** A redelivery on demand: the webhook gets `X-Mail-Redelivery: true`, the queue message `"redelivery": true`; the id is the same. */
  redelivery?: boolean;
}
