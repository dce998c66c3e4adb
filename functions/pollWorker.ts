import { app } from '@azure/functions';
import { POLL_QUEUE } from '../shared/state/queueNames.js';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/pollWorker.ts, loaded on its first invocation (lazy.ts says why). */
export const pollWorker = lazyHandler(() => (require('./handlers/pollWorker.js') as typeof import('./handlers/pollWorker.js')).pollWorker);

app.storageQueue('pollWorker', { queueName: POLL_QUEUE, connection: 'AzureWebJobsStorage', handler: pollWorker });
