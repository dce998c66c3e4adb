import type { SendRowOptions } from './faultRig.js';
import { faultMatrix, HALF, QUARTERS, once, outage } from './matrixSuite.js';

/** Key Vault, the workers and Azure Storage failing while N queued sends go through POST /api/send and the send worker over SMTP (test/faults/faultRig.ts). */
const rows: SendRowOptions[] = [
  {
    fault: 'Key Vault 503',
    profile: 'smtpVault',
    note: 'the first 5 secret reads answered 503 (the client secret is in the vault)',
    arm: (rig) => rig.vault.inject({ status: 503, times: 5, match: /^GET .*\/secrets\// }),
  },
  {
    fault: 'worker crash after the provider accepted, before the status write',
    profile: 'smtpImap',
    note: `worker process SIGKILLed at the SMTP server's ${QUARTERS.join(', ')}th 250`,
    crash: { at: QUARTERS },
  },
  {
    fault: 'two workers on one mailbox',
    profile: 'smtpImap',
    note: 'two worker processes drain the queue at once',
    twoWorkers: true,
  },
  {
    fault: 'Azure Storage unavailable for 10 s',
    profile: 'smtpImap',
    note: `Azurite stopped at the ${HALF}th acceptance, for 10 s`,
    onAccepted: once(HALF, (rig) => outage(rig)),
  },
];

faultMatrix('send', rows);
