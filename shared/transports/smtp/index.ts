import { z } from 'zod';
import { apiScope, type TransportDescriptor } from '../descriptor.js';
import { SMTP_SECURITY_MODES, smtpSecurity, smtpSecurityLabel } from './security.js';

const sendFields = {
  /** "implicit": TLS from the first byte (SMTP over SSL, port 465); "starttls": STARTTLS required (port 587). Default: implicit on port 465, starttls on any other; never plain text. */
  smtpSecurity: z.enum(SMTP_SECURITY_MODES).optional(),
  /** How long a server may take to greet after the connect, seconds (default 30, nodemailer's). */
  greetingTimeoutSeconds: z.number().int().min(1).max(300).optional(),
};

/** SMTP client submission with XOAUTH2 (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth). */
export const smtp: TransportDescriptor = {
  name: 'smtp',
  remote: true,
  send: {
    config: { fields: sendFields },
    create(profile, deps) {
      const { SmtpSender } = require('./smtpSender.js') as typeof import('./smtpSender.js');
      return new SmtpSender(profile, deps);
    },
    permissions: () => [{ api: 'exchange', purpose: 'send over SMTP', anyOf: ['SMTP.SendAsApp'] }],
    delegated: () => [{ api: 'exchange', permission: 'SMTP.Send' }],
    describe: (p) => `send via smtp to ${p.endpoints.smtp.host}:${p.endpoints.smtp.port} (${smtpSecurityLabel(smtpSecurity(p))}, XOAUTH2)`,
    async probe(p, ctx) {
      const { verifySmtpLogin } = require('./probe.js') as typeof import('./probe.js');
      const token = await ctx.tokens.getToken(apiScope('exchange', p.endpoints), { abortSignal: ctx.abortSignal });
      await verifySmtpLogin(p, token, { abortSignal: ctx.abortSignal, proxy: ctx.proxy });
      return { detail: `${p.endpoints.smtp.host}:${p.endpoints.smtp.port} accepted ${smtpSecurityLabel(smtpSecurity(p))} and the XOAUTH2 login as ${p.mailbox}; nothing was sent` };
    },
  },
};
