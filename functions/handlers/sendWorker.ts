import type { InvocationContext } from '@azure/functions';
import { getRuntime } from '../../shared/runtime.js';
import { processQueuedSend } from '../../shared/send/queuedSend.js';

export async function sendWorker(item: unknown, context: InvocationContext): Promise<void> {
  const runtime = getRuntime();
  const { dequeueCount, id } = context.triggerMetadata ?? {};
  await processQueuedSend(runtime, runtime.state.send, item, {
    dequeueCount: typeof dequeueCount === 'number' ? dequeueCount : undefined,
    messageId: typeof id === 'string' ? id : undefined,
  });
}
