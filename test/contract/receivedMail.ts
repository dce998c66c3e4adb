import { simpleParser, type AddressObject } from 'mailparser';
import type { Address } from '../../shared/mail/address.js';
import type { ReceivedMail } from './mailSender.js';

function addresses(field: AddressObject | AddressObject[] | undefined): Address[] {
  return (Array.isArray(field) ? field : field ? [field] : []).flatMap((o) => o.value).map((a) => (a.name ? { name: a.name, address: a.address ?? '' } : { address: a.address ?? '' }));
}

function importance(value: unknown): ReceivedMail['importance'] {
  return value === 'high' || value === 'low' ? value : 'normal';
}

/**
 * A MIME message (what an SMTP server or the outbox folder got) as the sender contract compares
 * it. `envelope`: the SMTP RCPT TO addresses, whose ones outside To and Cc are the Bcc; without
 * it the Bcc header is read (the outbox copy keeps it).
 */
export async function mailFromMime(raw: Buffer, options: { envelope?: string[] } = {}): Promise<ReceivedMail> {
  const parsed = await simpleParser(raw, { keepCidLinks: true });
  const to = addresses(parsed.to);
  const cc = addresses(parsed.cc);
  const shown = new Set([...to, ...cc].map((a) => a.address.toLowerCase()));
  const headers: Record<string, string> = {};
  for (const [name, value] of parsed.headers) if (name.startsWith('x-')) headers[name] = String(value);
  return {
    from: addresses(parsed.from)[0]?.address ?? '',
    to,
    cc,
    bcc: options.envelope ? options.envelope.filter((a) => !shown.has(a.toLowerCase())) : addresses(parsed.bcc).map((a) => a.address),
    replyTo: addresses(parsed.replyTo),
    subject: parsed.subject ?? '',
    ...(parsed.text !== undefined && { text: parsed.text.replace(/\r?\n$/, '') }),
    ...(parsed.html !== false && { html: parsed.html }),
    // mailparser folds Importance and X-Priority into one `priority` header.
    importance: importance(parsed.headers.get('priority')),
    headers,
    attachments: parsed.attachments.map((a) => ({ filename: a.filename ?? '', contentType: a.contentType, content: a.content, ...(a.cid !== undefined && { contentId: a.cid }) })),
    messageId: parsed.messageId ?? '',
    ...(options.envelope && { shownToRecipients: raw.toString('latin1') }),
  };
}
