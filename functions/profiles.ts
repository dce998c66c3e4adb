import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/profiles.ts, loaded on its first invocation (lazy.ts says why). */
export const profiles = lazyHandler(() => (require('./handlers/profiles.js') as typeof import('./handlers/profiles.js')).profiles);

app.http('profiles', { methods: ['GET'], route: 'profiles', authLevel: 'function', handler: profiles });
