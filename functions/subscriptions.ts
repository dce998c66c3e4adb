import { app } from '@azure/functions';
import { DEFAULT_SUBSCRIPTION_RENEW_SCHEDULE, timerSchedule } from '../shared/receive/pollSchedule.js';
import { lazyHandler } from './lazy.js';

/** Renews push profiles' Graph subscriptions before they expire (SUBSCRIPTION_RENEW_SCHEDULE). The handler, in handlers/subscriptions.ts, loaded on its first invocation. */
export const subscriptions = lazyHandler(() => (require('./handlers/subscriptions.js') as typeof import('./handlers/subscriptions.js')).subscriptions);

app.timer('subscriptions', { schedule: timerSchedule('SUBSCRIPTION_RENEW_SCHEDULE', DEFAULT_SUBSCRIPTION_RENEW_SCHEDULE), handler: subscriptions });
