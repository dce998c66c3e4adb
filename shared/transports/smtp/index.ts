import { z } from 'zod';
import type { Profile } from '../../config/profiles.js';
import { apiScope, type TransportDescriptor } from '../descriptor.js';
import { SMTP_SECURITY_MODES, smtpSecurity, smtpSecurityLabel } from './security.js';

const sendFields = {
  /** "implicit": TLS from the first byte (SMTP over SSL, port 465); "starttls": STARTTLS required (port 587). Default: implicit on port 465, starttls on any other; never plain text. */
  smtpSecurity: z.enum(SMTP_SECURITY_MODES).optional(),
  /** How long a server may take to greet after the connect, seconds (default 30, nodemailer's). */
  greetingTimeoutSeconds: z.number().int().min(1).max(300).optional(),
  /**
   * Where a send whose outcome is unknown (a crash, a connection lost after the DATA terminator)
   * is looked up before it is sent again: "imap", the mailbox's Sent folder over IMAP (Exchange
   * Online saves what the mailbox submits over SMTP there; needs IMAP.AccessAsApp), or "none".
   * Default: "imap" when the profile receives over IMAP, else "none".
   */
  lookupSent: z.enum(['imap', 'none']).optional(),
};

/** send.lookupSent, or its default: the profile's own IMAP when it reads its mailbox that way. */
function lookupSent(profile: Profile): 'imap' | 'none' {
  return (profile.send as { lookupSent?: 'imap' | 'none' } | undefined)?.lookupSent ?? (profile.receive?.via === 'imap' ? 'imap' : 'none');
}

/** The lookup's IMAP access, when the receive side does not already ask for it. */
function lookupOnly(profile: Profile): boolean {
  return lookupSent(profile) === 'imap' && profile.receive?.via !== 'imap';
}

/** SMTP client submission with XOAUTH2 (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth). */
export const smtp: TransportDescriptor = {
  name: 'smtp',
  remote: true,
  send: {
    config: { fields: sendFields },
    create(profile, deps) {
      const { SmtpSender } = require('./smtpSender.js') as typeof import('./smtpSender.js');
      if (lookupSent(profile) === 'none') return new SmtpSender(profile, deps);
      const { foundInImapSent } = require('../imap/imapSentFolder.js') as typeof import('../imap/imapSentFolder.js');
      return new SmtpSender(profile, deps, { lookupSent: (messageId, options) => foundInImapSent(profile, deps, messageId, options) });
    },
    permissions: (p) => [
      { api: 'exchange', purpose: 'send over SMTP', anyOf: ['SMTP.SendAsApp'] },
      ...(lookupOnly(p) ? [{ api: 'exchange' as const, purpose: 'look up a send whose outcome is unknown in the Sent folder over IMAP', anyOf: ['IMAP.AccessAsApp'] }] : []),
    ],
    delegated: (p) => [{ api: 'exchange', permission: 'SMTP.Send' }, ...(lookupOnly(p) ? [{ api: 'exchange' as const, permission: 'IMAP.AccessAsUser.All' }] : [])],
    describe: (p) => `send via smtp to ${p.endpoints.smtp.host}:${p.endpoints.smtp.port} (${smtpSecurityLabel(smtpSecurity(p))}, XOAUTH2)`,
    async probe(p, ctx) {
      const { verifySmtpLogin } = require('./probe.js') as typeof import('./probe.js');
      const token = await ctx.tokens.getToken(apiScope('exchange', p.endpoints), { abortSignal: ctx.abortSignal });
      await verifySmtpLogin(p, token, { abortSignal: ctx.abortSignal, proxy: ctx.proxy });
      return { detail: `${p.endpoints.smtp.host}:${p.endpoints.smtp.port} accepted ${smtpSecurityLabel(smtpSecurity(p))} and the XOAUTH2 login as ${p.mailbox}; nothing was sent` };
    },
  },
};
