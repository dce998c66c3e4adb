import { app } from '@azure/functions';
import { pushFallbackSchedule } from '../shared/receive/pollSchedule.js';
import { pollQueue } from './bindings.js';
import { lazyHandler } from './lazy.js';

/** Polls push profiles with an active subscription now and then (PUSH_FALLBACK_SCHEDULE), as a safety net. The handler, in handlers/pollFallback.ts, loaded on its first invocation. */
export const pollFallback = lazyHandler(() => (require('./handlers/pollFallback.js') as typeof import('./handlers/pollFallback.js')).pollFallback);

app.timer('pollFallback', { schedule: pushFallbackSchedule(), extraOutputs: [pollQueue], handler: pollFallback });
