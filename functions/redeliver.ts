import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/redeliver.ts, loaded on its first invocation (lazy.ts says why). */
export const redeliver = lazyHandler(() => (require('./handlers/redeliver.js') as typeof import('./handlers/redeliver.js')).redeliver);

app.http('redeliver', { methods: ['POST'], route: 'profiles/{name}/redeliver', authLevel: 'function', handler: redeliver });
