import { app } from '@azure/functions';
import { subscriptionRenewSchedule } from '../shared/receive/pollSchedule.js';
import { lazyHandler } from './lazy.js';

/** Renews push profiles' Graph subscriptions before they expire (SUBSCRIPTION_RENEW_SCHEDULE). The handler, in handlers/subscriptions.ts, loaded on its first invocation. */
export const subscriptions = lazyHandler(() => (require('./handlers/subscriptions.js') as typeof import('./handlers/subscriptions.js')).subscriptions);

app.timer('subscriptions', { schedule: subscriptionRenewSchedule(), handler: subscriptions });
