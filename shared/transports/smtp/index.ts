import { apiScope, type TransportDescriptor } from '../descriptor.js';

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
    async probe(p, ctx) {
      const { verifySmtpLogin } = require('./probe.js') as typeof import('./probe.js');
      const token = await ctx.tokens.getToken(apiScope('exchange', p.endpoints), { abortSignal: ctx.abortSignal });
      await verifySmtpLogin(p, token, { abortSignal: ctx.abortSignal });
      return { detail: `${p.endpoints.smtp.host}:${p.endpoints.smtp.port} accepted STARTTLS and the XOAUTH2 login as ${p.mailbox}; nothing was sent` };
    },
  },
};
