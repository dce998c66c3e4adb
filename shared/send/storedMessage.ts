import { z } from 'zod';
import { MailError } from '../errors.js';
import type { OutgoingMessage } from '../mail/outgoing.js';
import type { PreparedMessage } from './sendMail.js';

const address = z.object({ name: z.string().optional(), address: z.string() });

/**
 * A validated, normalized message as the outbox keeps it: everything a sender needs,
 * attachments in base64, and the Message-ID assigned when it was accepted, so that every
 * attempt sends the same Message-ID and a recipient can tell a repeat.
 */
const storedMessageSchema = z.object({
  version: z.literal(1),
  id: z.string(),
  profile: z.string(),
  message: z.object({
    from: address,
    to: z.array(address),
    cc: z.array(address),
    bcc: z.array(address),
    replyTo: z.array(address),
    subject: z.string(),
    text: z.string().optional(),
    html: z.string().optional(),
    importance: z.enum(['low', 'normal', 'high']),
    headers: z.record(z.string(), z.string()),
    attachments: z.array(z.object({ filename: z.string(), contentType: z.string(), content: z.string(), contentId: z.string().optional() })),
    messageId: z.string(),
  }),
});
export type StoredMessage = z.infer<typeof storedMessageSchema>;

export function toStoredMessage(id: string, prepared: PreparedMessage): StoredMessage {
  const { message } = prepared;
  return {
    version: 1,
    id,
    profile: prepared.profile.name,
    message: { ...message, attachments: message.attachments.map((a) => ({ ...a, content: a.content.toString('base64') })) },
  };
}

const unreadable = (why: string) =>
  new MailError('ESTATE', `a queued message is not readable: ${why}`, { hint: 'The outbox blob was changed outside this app; send the message again.' });

/** The stored JSON back as the profile name and the message a sender takes. */
export function fromStoredMessage(text: string): { id: string; profile: string; message: OutgoingMessage } {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    // The parser's message quotes the text, which is the message itself: it must not reach a log.
    throw unreadable('not JSON');
  }
  const stored = storedMessageSchema.safeParse(document);
  if (!stored.success) throw unreadable(stored.error.issues[0]?.message ?? 'invalid');
  const { id, profile, message } = stored.data;
  return { id, profile, message: { ...message, attachments: message.attachments.map((a) => ({ ...a, content: Buffer.from(a.content, 'base64') })) } };
}
