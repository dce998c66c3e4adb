import type { PollRowOptions } from './faultRig.js';
import { faultMatrix, HALF, QUARTERS, once, outage } from './matrixSuite.js';

/** Each fault while N messages seeded at the IMAP or Graph peer are polled to the signed webhook (test/faults/faultRig.ts). */
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
