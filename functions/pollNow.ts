import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/pollNow.ts, loaded on its first invocation (lazy.ts says why). */
export const pollNow = lazyHandler(() => (require('./handlers/pollNow.js') as typeof import('./handlers/pollNow.js')).pollNow);

app.http('pollNow', { methods: ['POST'], route: 'profiles/{name}/poll', authLevel: 'function', handler: pollNow });
