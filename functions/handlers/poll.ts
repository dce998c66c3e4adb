import type { InvocationContext, Timer } from '@azure/functions';
import { pollRequests } from '../../shared/receive/pollRequests.js';
import { getRuntime } from '../../shared/runtime.js';
import { pollQueue } from '../bindings.js';

export async function poll(timer: Timer, context: InvocationContext): Promise<void> {
  const requests = await pollRequests(getRuntime());
  context.extraOutputs.set(pollQueue, requests);
  context.log(JSON.stringify({ operation: 'poll', outcome: 'ok', profiles: requests.length, isPastDue: timer.isPastDue }));
}
