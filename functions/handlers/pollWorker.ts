import type { InvocationContext } from '@azure/functions';
import { handlePollRequest } from '../../shared/receive/pollRequests.js';
import { getRuntime } from '../../shared/runtime.js';

export async function pollWorker(item: unknown, _context: InvocationContext): Promise<void> {
  await handlePollRequest(getRuntime(), item);
}
