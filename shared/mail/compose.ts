import type { MailComposerOptions } from 'nodemailer/lib/mail-composer';
import { formatAddress } from './address.js';
import type { OutgoingMessage } from './outgoing.js';

/**
 * The headers Outlook and other clients read for importance, as nodemailer's `priority`
 * option writes them. That option is applied by nodemailer's Mailer only, not by
 * MailComposer, so they are set here for every path (composer and SMTP alike).
 */
const IMPORTANCE_HEADERS: Record<OutgoingMessage['importance'], Record<string, string>> = {
  low: { 'X-Priority': '5 (Lowest)', 'X-MSMail-Priority': 'Low', Importance: 'Low' },
  normal: {},
  high: { 'X-Priority': '1 (Highest)', 'X-MSMail-Priority': 'High', Importance: 'High' },
};

function messageHeaders(message: OutgoingMessage): Record<string, string> {
  const importance = IMPORTANCE_HEADERS[message.importance];
  const overridden = new Set(Object.keys(importance).map((k) => k.toLowerCase()));
  const custom = Object.entries(message.headers).filter(([name]) => !overridden.has(name.toLowerCase()));
  return { ...Object.fromEntries(custom), ...importance };
}

/** Maps our message to nodemailer's message options (used by the composer and the SMTP transport). */
export function toNodemailerOptions(message: OutgoingMessage): MailComposerOptions {
  const list = (addresses: OutgoingMessage['to']) => (addresses.length ? addresses.map(formatAddress) : undefined);
  return {
    from: formatAddress(message.from),
    to: list(message.to),
    cc: list(message.cc),
    bcc: list(message.bcc),
    replyTo: list(message.replyTo),
    subject: message.subject,
    text: message.text,
    html: message.html,
    headers: messageHeaders(message),
    messageId: message.messageId,
    attachments: message.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
      cid: a.contentId,
    })),
  };
}

/** Composes RFC 5322 source with nodemailer's composer (never by hand). Bcc is kept only when asked for. */
export async function composeMime(message: OutgoingMessage, options: { keepBcc?: boolean } = {}): Promise<Buffer> {
  // Loaded on first use: every function file reaches this module (the diagnosis through the SMTP sender), few compose.
  const { default: MailComposer } = require('nodemailer/lib/mail-composer') as typeof import('nodemailer/lib/mail-composer');
  const mail = new MailComposer(toNodemailerOptions(message)).compile();
  if (options.keepBcc) mail.keepBcc = true;
  return mail.build();
}
