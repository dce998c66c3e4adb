import { output } from '@azure/functions';
import { POLL_QUEUE } from '../shared/state/queueNames.js';

/** Queue output binding of the poll timer: the host writes one message per array item (base64, as the trigger reads it). */
export const pollQueue = output.storageQueue({ queueName: POLL_QUEUE, connection: 'AzureWebJobsStorage' });
