import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvocationContext } from '@azure/functions';
import { sendWorker } from '../../functions/sendWorker.js';
import { HOST_MAX_DEQUEUE_COUNT } from '../../shared/send/queuedSend.js';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import type { SendState } from '../../shared/state/sendState.js';

/** host.json `extensions.queues.batchSize`: messages the host hands to workers at once. */
const BATCH_SIZE = 16;
const NEW_BATCH_THRESHOLD = 8;
/**
 * How long a message taken off the queue stays invisible, renewed while the function runs as the
 * host renews it, so it reappears only when the worker died. Shorter here than the host's, so
 * that a killed worker's messages come back within seconds.
 */
export const TAKEN_VISIBILITY_SECONDS = 8;
/**
 * host.json `visibilityTimeout` (30 s) is the wait before a failed message is delivered again;
 * 1 s here, so a storage outage's redeliveries do not stretch the run. The count and the poison
 * queue are the host's.
 */
const FAILED_RETRY_SECONDS = 1;
export const SEND_POISON_QUEUE = `${SEND_QUEUE}-poison`;

export interface QueueHostOptions {
  /** Stops taking messages (what is in flight finishes). */
  signal?: AbortSignal;
  /** Gives up waiting for the queue to empty after this long (ms); the caller reports what is left. */
  patienceMs?: number;
}

/**
 * Runs the real send worker (functions/sendWorker.ts, through its registered handler) over
 * mail-send as the Functions host does: batches of 16, the next fetched once 8 or fewer run, each deleted when the
 * function returns, made visible again when it throws, moved to mail-send-poison after the
 * 5th failed delivery (maxDequeueCount), with the trigger's dequeueCount and id. Returns when
 * the queue holds nothing, visible or delayed.
 */
export async function drainSendQueue(state: SendState, options: QueueHostOptions = {}): Promise<{ handled: number; thrown: number; poisoned: number; left: number }> {
  const queue = await state.account.queue(SEND_QUEUE);
  const poison = await state.account.queue(SEND_POISON_QUEUE);
  const until = Date.now() + (options.patienceMs ?? 300_000);
  let handled = 0;
  let thrown = 0;
  let poisoned = 0;
  let left = 0;
  // host.json: batchSize 16, newBatchThreshold 8: the host fetches more once fewer than 8 run.
  const running = new Set<Promise<void>>();
  const handle = async (message: { messageId: string; popReceipt: string; messageText: string; dequeueCount: number }) => {
    const item = JSON.parse(Buffer.from(message.messageText, 'base64').toString('utf8')) as unknown;
    const context = new InvocationContext({ invocationId: randomUUID(), functionName: 'sendWorker', triggerMetadata: { dequeueCount: message.dequeueCount, id: message.messageId }, logHandler: () => undefined });
    // The host keeps a message it is running invisible (it renews the visibility), so that it is
    // delivered again only when the instance died.
    let popReceipt = message.popReceipt;
    const renewal = setInterval(() => {
      void queue.updateMessage(message.messageId, popReceipt, undefined, TAKEN_VISIBILITY_SECONDS).then((r) => (popReceipt = r.popReceipt ?? popReceipt), () => undefined);
    }, (TAKEN_VISIBILITY_SECONDS * 1000) / 3);
    try {
      await sendWorker(item, context);
      clearInterval(renewal);
      handled++;
      await queue.deleteMessage(message.messageId, popReceipt).catch(() => undefined);
    } catch {
      clearInterval(renewal);
      thrown++;
      if (message.dequeueCount >= HOST_MAX_DEQUEUE_COUNT) {
        poisoned++;
        await poison.sendMessage(message.messageText).catch(() => undefined);
        await queue.deleteMessage(message.messageId, popReceipt).catch(() => undefined);
      } else {
        await queue.updateMessage(message.messageId, popReceipt, undefined, FAILED_RETRY_SECONDS).catch(() => undefined);
      }
    }
  };
  while (!options.signal?.aborted && Date.now() < until) {
    if (running.size > NEW_BATCH_THRESHOLD) {
      await Promise.race(running);
      continue;
    }
    const taken = await queue.receiveMessages({ numberOfMessages: BATCH_SIZE, visibilityTimeout: TAKEN_VISIBILITY_SECONDS }).catch(() => undefined);
    const items = taken?.receivedMessageItems ?? [];
    if (items.length === 0) {
      if (running.size > 0) {
        await Promise.race([...running, sleep(250)]);
        continue;
      }
      left = (await queue.getProperties().catch(() => ({ approximateMessagesCount: 1 }))).approximateMessagesCount ?? 0;
      if (left === 0) break;
      await sleep(250);
      continue;
    }
    for (const message of items) {
      const run: Promise<void> = handle(message).finally(() => running.delete(run));
      running.add(run);
    }
  }
  await Promise.all(running);
  return { handled, thrown, poisoned, left };
}
