import { app, output, type InvocationContext, type Timer } from '@azure/functions';
import { POLL_QUEUE, pollRequests } from '../shared/receive/pollRequests.js';
import { pollSchedule } from '../shared/receive/pollSchedule.js';
import { getRuntime } from '../shared/runtime.js';

/** Queue output binding: the host writes one message per array item (base64, as the trigger reads it). */
export const pollQueue = output.storageQueue({ queueName: POLL_QUEUE, connection: 'AzureWebJobsStorage' });

export async function poll(timer: Timer, context: InvocationContext): Promise<void> {
  const requests = pollRequests(getRuntime());
  context.extraOutputs.set(pollQueue, requests);
  context.log(JSON.stringify({ operation: 'poll', outcome: 'ok', profiles: requests.length, isPastDue: timer.isPastDue }));
}

app.timer('poll', { schedule: pollSchedule(), extraOutputs: [pollQueue], handler: poll });
