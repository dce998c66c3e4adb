import type { PollRowOptions } from './faultRig.js';
import { faultMatrix, HALF, once, outage } from './matrixSuite.js';

/** The mailbox, the source and the storage failing while N messages seeded at the IMAP or Graph peer are polled to the signed webhook (test/faults/faultRig.ts). */
const rows: PollRowOptions[] = [
  {
    fault: 'IMAP UIDVALIDITY change',
    via: 'imap',
    note: `INBOX rebuilt (new UIDVALIDITY, UIDs renumbered) at the ${HALF}th acknowledgement`,
    onAcknowledged: once(HALF, (rig) => rig.inbox!.changeUidValidity('INBOX')),
  },
  {
    fault: 'expired Graph delta token',
    via: 'graph',
    note: `every delta token expired at the ${HALF}th acknowledgement`,
    onAcknowledged: once(HALF, (rig) => rig.graph.mail.expireDeltaTokens()),
  },
  {
    fault: 'poison message (always fails parsing)',
    via: 'imap',
    poison: 10,
    note: '10 unparseable sources among the messages: dead-lettered once each',
  },
  {
    fault: 'Azure Storage unavailable for 10 s',
    via: 'imap',
    note: `Azurite stopped at the ${HALF}th acknowledgement, for 10 s`,
    onAcknowledged: once(HALF, (rig) => outage(rig)),
  },
];

faultMatrix('poll', rows);
