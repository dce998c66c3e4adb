import type { InvocationContext, Timer } from '@azure/functions';
import { fallbackPollRequests } from '../../shared/receive/pollRequests.js';
import { getRuntime } from '../../shared/runtime.js';
import { pollQueue } from '../bindings.js';

export async function pollFallback(timer: Timer, context: InvocationContext): Promise<void> {
  const requests = await fallbackPollRequests(getRuntime());
  context.extraOutputs.set(pollQueue, requests);
  context.log(JSON.stringify({ operation: 'pollFallback', outcome: 'ok', profiles: requests.length, isPastDue: timer.isPastDue }));
}
