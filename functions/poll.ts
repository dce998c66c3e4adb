import { app } from '@azure/functions';
import { pollSchedule } from '../shared/receive/pollSchedule.js';
import { pollQueue } from './bindings.js';
import { lazyHandler } from './lazy.js';

export { pollQueue } from './bindings.js';
/** The handler, in handlers/poll.ts, loaded on its first invocation (lazy.ts says why). */
export const poll = lazyHandler(() => (require('./handlers/poll.js') as typeof import('./handlers/poll.js')).poll);

app.timer('poll', { schedule: pollSchedule(), extraOutputs: [pollQueue], handler: poll });
