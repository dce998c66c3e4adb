import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/health.ts, loaded on its first invocation (lazy.ts says why). */
export const health = lazyHandler(() => (require('./handlers/health.js') as typeof import('./handlers/health.js')).health);

// Anonymous: App Service Health check and load balancer probes call it without a key.
app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
