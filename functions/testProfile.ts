import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/testProfile.ts, loaded on its first invocation (lazy.ts says why). */
export const testProfile = lazyHandler(() => (require('./handlers/testProfile.js') as typeof import('./handlers/testProfile.js')).testProfile);

app.http('testProfile', { methods: ['POST'], route: 'profiles/{name}/test', authLevel: 'function', handler: testProfile });
