import { app } from '@azure/functions';
import { NOTIFICATION_ROUTE } from '../shared/receive/notificationRoutes.js';
import { lazyHandler } from './lazy.js';

/**
 * Graph's change notifications for push profiles. Anonymous: Graph sends no function key, and the
 * subscription's clientState is what authenticates a notification (docs/receiving.md#push). The
 * handler, in handlers/notifications.ts, loaded on its first invocation (lazy.ts says why).
 */
export const notifications = lazyHandler(() => (require('./handlers/notifications.js') as typeof import('./handlers/notifications.js')).notifications);

app.http('notifications', { methods: ['POST'], route: NOTIFICATION_ROUTE, authLevel: 'anonymous', handler: notifications });
