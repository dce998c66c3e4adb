import { app } from '@azure/functions';
import { lazyHandler } from './lazy.js';

/** The handler, in handlers/oauthCallback.ts, loaded on its first invocation (lazy.ts says why). */
export const oauthCallback = lazyHandler(() => (require('./handlers/oauthCallback.js') as typeof import('./handlers/oauthCallback.js')).oauthCallback);

app.http('oauthCallback', { methods: ['GET'], route: 'oauth/callback', authLevel: 'anonymous', handler: oauthCallback });
