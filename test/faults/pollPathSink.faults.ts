import type { PollRowOptions } from './faultRig.js';
import { faultMatrix, QUARTERS, once } from './matrixSuite.js';

/** The sink, the worker and the token endpoint failing while N messages seeded at the IMAP or Graph peer are polled to the signed webhook (test/faults/faultRig.ts). */
const rows: PollRowOptions[] = [
  {
    fault: 'webhook 500 then recovery',
    via: 'imap',
    note: '30 answers 500 from the 100th request on',
    onAcknowledged: once(100, (rig) => rig.webhook.answer(...Array.from({ length: 30 }, () => ({ status: 500 })))),
  },
  {
    fault: 'webhook timeout',
    via: 'imap',
    note: '5 answers held 3 s (WEBHOOK_TIMEOUT_MS 2000) from the 100th request on',
    onAcknowledged: once(100, (rig) => rig.webhook.answer(...Array.from({ length: 5 }, () => ({ status: 200, delayMs: 3_000 })))),
  },
  {
    fault: 'worker crash after the sink acknowledged, before the cursor write',
    via: 'imap',
    note: `poll process SIGKILLed as the webhook's ${QUARTERS.join(', ')}th 200 went out`,
    crash: { at: QUARTERS },
  },
  {
    fault: 'two workers on one mailbox',
    via: 'imap',
    note: 'two runtimes poll the mailbox at once, again and again',
    twoWorkers: true,
  },
  {
    fault: 'token endpoint timeout',
    via: 'graph',
    note: 'the first token request held 30 s (the app gives up at TOKEN_TIMEOUT_SECONDS, 5 s here)',
    arm: (rig) => rig.entra.inject({ status: 500, delayMs: 30_000, times: 1, match: /^POST .*\/token/ }),
  },
];

faultMatrix('poll', rows);
