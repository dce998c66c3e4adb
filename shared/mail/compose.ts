import MailComposer from 'nodemailer/lib/mail-composer';
import type { MailComposerOptions } from 'nodemailer/lib/mail-composer';
import { formatAddress } from './address.js';
import type { OutgoingMessage } from './outgoing.js';

const IMPORTANCE_PRIORITY = { low: 'low', normal: 'normal', high: 'high' } as const;

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
    priority: IMPORTANCE_PRIORITY[message.importance],
    headers: message.headers,
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
  const mail = new MailComposer(toNodemailerOptions(message)).compile();
  if (options.keepBcc) mail.keepBcc = true;
  return mail.build();
}
