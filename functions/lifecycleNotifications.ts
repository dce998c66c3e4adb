import { app } from '@azure/functions';
import { LIFECYCLE_ROUTE } from '../shared/receive/notificationRoutes.js';
import { lazyHandler } from './lazy.js';

/** Graph's lifecycle events of push profiles' subscriptions, anonymous like notifications. The handler, in handlers/notifications.ts, loaded on its first invocation. */
export const lifecycleNotifications = lazyHandler(() => (require('./handlers/notifications.js') as typeof import('./handlers/notifications.js')).lifecycleNotifications);

app.http('lifecycleNotifications', { methods: ['POST'], route: LIFECYCLE_ROUTE, authLevel: 'anonymous', handler: lifecycleNotifications });
