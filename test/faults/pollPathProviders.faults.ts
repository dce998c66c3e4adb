import type { PollRowOptions } from './faultRig.js';
import { faultMatrix, once } from './matrixSuite.js';

/** Each fault of the token endpoint, Key Vault and Graph while N messages seeded at the IMAP or Graph peer are polled to the signed webhook (test/faults/faultRig.ts). */
const rows: PollRowOptions[] = [
  {
    fault: 'token endpoint 500',
    via: 'imap',
    note: 'the first 5 token requests answered 500',
    arm: (rig) => rig.entra.inject({ status: 500, times: 5, match: /^POST .*\/token/ }),
  },
  {
    fault: 'Key Vault 503',
    via: 'imap',
    vault: true,
    note: 'the first 5 secret reads answered 503 (the client secret and the signing key are in the vault)',
    arm: (rig) => rig.vault.inject({ status: 503, times: 5, match: /^GET .*\/secrets\// }),
  },
  {
    fault: 'Graph 429 with Retry-After',
    via: 'graph',
    note: '30 delta and $value requests 429, Retry-After: 1',
    onAcknowledged: once(100, (rig) => rig.graph.inject({ status: 429, code: 'ApplicationThrottled', retryAfter: 1, times: 30, match: /^GET .*(\/delta|\/\$value)/ })),
  },
  {
    fault: 'Graph 503',
    via: 'graph',
    note: '12 delta and $value requests 503, without Retry-After (the SDK waits 3 s and more before each of its 3 retries: 3 polls fail)',
    onAcknowledged: once(100, (rig) => rig.graph.inject({ status: 503, code: 'ServiceUnavailable', times: 12, match: /^GET .*(\/delta|\/\$value)/ })),
  },
];

faultMatrix('poll', rows);
