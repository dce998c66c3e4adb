import type { TransportDescriptor } from '../descriptor.js';

/** SMTP client submission with XOAUTH2 (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth). */
export const smtp: TransportDescriptor = {
  name: 'smtp',
  remote: true,
  send: {
    config: { fields: {} },
    create(profile, deps) {
      const { SmtpSender } = require('./smtpSender.js') as typeof import('./smtpSender.js');
      return new SmtpSender(profile, deps);
    },
    permissions: () => [{ api: 'exchange', purpose: 'send over SMTP', anyOf: ['SMTP.SendAsApp'] }],
    delegated: () => [{ api: 'exchange', permission: 'SMTP.Send' }],
    describe: (p) => `send via smtp to ${p.endpoints.smtp.host}:${p.endpoints.smtp.port} (STARTTLS, XOAUTH2)`,
  },
};
