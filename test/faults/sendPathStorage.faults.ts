import type { SendRowOptions } from './faultRig.js';
import { faultMatrix, HALF, once, outage } from './matrixSuite.js';

/** Azure Storage failing while N queued sends go through POST /api/send and the send worker (test/faults/faultRig.ts); a file of its own, as the outage's row is the longest. */
const rows: SendRowOptions[] = [
  {
    fault: 'Azure Storage unavailable for 10 s',
    profile: 'smtpImap',
    note: `Azurite stopped at the ${HALF}th acceptance, for 10 s`,
    onAccepted: once(HALF, (rig) => outage(rig)),
  },
];

faultMatrix('send', rows);
