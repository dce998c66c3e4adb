import { app, type InvocationContext } from '@azure/functions';
import { POLL_QUEUE, handlePollRequest } from '../shared/receive/pollRequests.js';
import { getRuntime } from '../shared/runtime.js';

export async function pollWorker(item: unknown, _context: InvocationContext): Promise<void> {
  await handlePollRequest(getRuntime(), item);
}

app.storageQueue('pollWorker', { queueName: POLL_QUEUE, connection: 'AzureWebJobsStorage', handler: pollWorker });
