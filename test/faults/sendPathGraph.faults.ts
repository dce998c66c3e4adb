import type { SendRowOptions } from './faultRig.js';
import { faultMatrix, QUARTERS } from './matrixSuite.js';

/** Each fault while N queued sends go through POST /api/send and the send worker over Graph, a worker's crash among them (test/faults/faultRig.ts). */
const rows: SendRowOptions[] = [
  {
    fault: 'token endpoint timeout',
    profile: 'graph',
    note: 'the first token request held 30 s (the app gives up at TOKEN_TIMEOUT_SECONDS, 5 s here)',
    arm: (rig) => rig.entra.inject({ status: 500, delayMs: 30_000, times: 1, match: /^POST .*\/token/ }),
  },
  {
    fault: 'Graph 429 with Retry-After',
    profile: 'graph',
    note: '60 sendMail requests 429, Retry-After: 1',
    arm: (rig) => rig.graph.inject({ status: 429, code: 'ApplicationThrottled', retryAfter: 1, times: 60, match: /^POST .*\/sendMail$/ }),
  },
  {
    fault: 'Graph 503',
    profile: 'graph',
    note: '40 sendMail requests 503 (an unknown outcome: looked up in Sent Items before a resend)',
    arm: (rig) => rig.graph.inject({ status: 503, code: 'ServiceUnavailable', times: 40, match: /^POST .*\/sendMail$/ }),
  },
  {
    fault: 'worker crash after the provider accepted, before the status write',
    profile: 'graph',
    note: `worker process SIGKILLed at Graph's ${QUARTERS.join(', ')}th acceptance`,
    crash: { at: QUARTERS },
  },
];

faultMatrix('send', rows);
