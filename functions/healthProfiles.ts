import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/healthProfiles.ts, loaded on its first invocation (lazy.ts says why). */
export const healthProfiles = lazyHandler(() => (require('./handlers/healthProfiles.js') as typeof import('./handlers/healthProfiles.js')).healthProfiles);

app.http('healthProfiles', { methods: ['GET'], route: 'health/profiles', authLevel: 'function', handler: healthProfiles });
