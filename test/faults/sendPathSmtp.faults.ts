import type { SendRowOptions } from './faultRig.js';
import { faultMatrix } from './matrixSuite.js';

/** The SMTP server and the token endpoint failing while N queued sends go through POST /api/send and the send worker over SMTP, looked up over IMAP when the outcome is unknown (test/faults/faultRig.ts). */
const rows: SendRowOptions[] = [
  {
    fault: 'SMTP connection dropped mid-DATA',
    profile: 'smtpImap',
    note: '20 cut while the message arrived (nothing kept), 20 after the terminator (kept, no reply)',
    arm: (rig) => (rig.smtp.failures = { dropDuringData: { times: 20 }, dropAfterData: { times: 20 } }),
  },
  {
    fault: 'SMTP 421/451 temporary failure',
    profile: 'smtpImap',
    note: '20 sessions 421 4.3.2 at connect, 20 messages 451 4.3.0 after DATA',
    arm: (rig) => (rig.smtp.failures = { connect: { code: 421, text: '4.3.2 Service not available, closing transmission channel', times: 20 }, data: { code: 451, text: '4.3.0 Temporary server error. Please try again later', times: 20 } }),
  },
  {
    fault: 'token endpoint 500',
    profile: 'smtpImap',
    note: 'the first 5 token requests answered 500',
    arm: (rig) => rig.entra.inject({ status: 500, times: 5, match: /^POST .*\/token/ }),
  },
];

faultMatrix('send', rows);
