import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/connect.ts, loaded on its first invocation (lazy.ts says why). */
export const connect = lazyHandler(() => (require('./handlers/connect.js') as typeof import('./handlers/connect.js')).connect);

app.http('connect', { methods: ['GET'], route: 'connect/{profile}', authLevel: 'function', handler: connect });
