import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/sendStatus.ts, loaded on its first invocation (lazy.ts says why). */
export const sendStatus = lazyHandler(() => (require('./handlers/sendStatus.js') as typeof import('./handlers/sendStatus.js')).sendStatus);

app.http('sendStatus', { methods: ['GET'], route: 'send/{id}', authLevel: 'function', handler: sendStatus });
