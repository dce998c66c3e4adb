import { app } from '@azure/functions';
import { SEND_QUEUE } from '../shared/state/queueNames.js';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/sendWorker.ts, loaded on its first invocation (lazy.ts says why). */
export const sendWorker = lazyHandler(() => (require('./handlers/sendWorker.js') as typeof import('./handlers/sendWorker.js')).sendWorker);

app.storageQueue('sendWorker', { queueName: SEND_QUEUE, connection: 'AzureWebJobsStorage', handler: sendWorker });
