import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/send.ts, loaded on its first invocation (lazy.ts says why). */
export const send = lazyHandler(() => (require('./handlers/send.js') as typeof import('./handlers/send.js')).send);

app.http('send', { methods: ['POST'], route: 'send', authLevel: 'function', handler: send });
