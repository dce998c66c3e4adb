import { createHash, type Hash } from 'node:crypto';
import type { HeaderLines, HeaderValue } from 'mailparser';
import { addresses, indexHeaders, parseDate, stringHeader } from './headers.js';
import type { DeliveredMessage } from './incoming.js';

/**
 * sha256 over profile, mailbox, Message-ID and the parsed Date, From, To and Subject, so every
 * reader, a re-fetch and a resync agree, while another message that reuses a known Message-ID
 * (a sender chooses it) gets an id of its own instead of being taken for a duplicate. These
 * four headers survive a move and a re-upload; Received stamps and provider ids do not (IMAP
 * UIDs change on move and UIDVALIDITY reset, and POP3 and Graph ids differ from both). Without a
 * Message-ID the parsed content stands in (sender, recipients, date, subject, bodies, attachment
 * checksums). Parsed values throughout, so line-ending or transfer-encoding differences between
 * readers do not change it.
 */
export function stableId(message: Omit<DeliveredMessage, 'id'>, attachmentChecksums: readonly string[]): string {
  if (message.messageId !== undefined) {
    return boundIdHash({ name: message.profile, mailbox: message.mailbox }, { messageId: message.messageId, sentAt: message.sentAt, from: message.from?.address, to: message.to.map((a) => a.address), subject: message.subject });
  }
  const recipients = [...message.to, ...message.cc].map((a) => a.address.toLowerCase());
  return idHash({ name: message.profile, mailbox: message.mailbox })
    .update(JSON.stringify(['content', message.sentAt ?? null, message.from?.address.toLowerCase() ?? null, recipients, message.subject, message.text ?? null, message.html ?? null, attachmentChecksums]))
    .digest('hex');
}

/** Every id starts from the profile and the mailbox: one message in two mailboxes is two deliveries. */
function idHash(profile: { name: string; mailbox: string }): Hash {
  return createHash('sha256').update(`${profile.name}\0${profile.mailbox.toLowerCase()}\0`);
}

/** What a Message-ID's id is bound to: the parsed values, as the delivered JSON carries them. */
interface BoundFields {
  messageId: string;
  sentAt: string | undefined;
  from: string | undefined;
  to: readonly string[];
  subject: string;
}

function boundIdHash(profile: { name: string; mailbox: string }, fields: BoundFields): string {
  const bound = [fields.sentAt ?? null, fields.from?.toLowerCase() ?? null, fields.to.map((a) => a.toLowerCase()), fields.subject];
  return idHash(profile).update(`message-id\0${fields.messageId}\0`).update(JSON.stringify(bound)).digest('hex');
}

/**
 * AttachmentMeta.messageKey. Without a Message-ID the stable id hangs on the bodies, which are
 * not parsed yet when the first attachment streams; the raw header section (Received stamps
 * included) tells one message from another as well, and is the same on every reading of it.
 */
export function attachmentKey(profile: { name: string; mailbox: string }, headers: Map<string, HeaderValue>, lines: HeaderLines): string {
  const messageId = stringHeader(headers.get('message-id'));
  if (messageId !== undefined) {
    // The same values parseMessage puts in the delivered JSON, from the same header section.
    return boundIdHash(profile, {
      messageId,
      sentAt: parseDate(indexHeaders(lines).get('date')?.[0])?.toISOString(),
      from: addresses(headers.get('from'))[0]?.address,
      to: addresses(headers.get('to')).map((a) => a.address),
      subject: stringHeader(headers.get('subject')) ?? '',
    });
  }
  const hash = idHash(profile).update('headers\0');
  for (const { line } of lines) hash.update(`${line}\n`);
  return hash.digest('hex');
}

/**
 * The stable id of a message the parser refused (EPARSE), as a hash to feed the raw bytes to:
 * sha256 over profile, mailbox and the raw bytes, as it has no parsed fields to stand on. It lets
 * the dedupe table remember a dead-lettered message, so that a resync or a lost cursor write does
 * not dead-letter it again. Readers may hand one message over as different bytes (line ends), so
 * it holds per reader.
 */
export function unparseableIdHash(profile: { name: string; mailbox: string }): Hash {
  return idHash(profile).update('source\0');
}
