import { z } from 'zod';
import { parseAddress, type Address } from './address.js';

/** The normalized message every MailSender takes. */
export interface OutgoingMessage {
  from: Address;
  to: Address[];
  cc: Address[];
  bcc: Address[];
  replyTo: Address[];
  subject: string;
  text?: string;
  html?: string;
  importance: 'low' | 'normal' | 'high';
  /** Custom X- headers only. */
  headers: Record<string, string>;
  attachments: OutgoingAttachment[];
  /** RFC 5322 Message-ID we assign, `<...>`, so every transport reports the same id. */
  messageId: string;
}

export interface OutgoingAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
  /** Set for inline images referenced from the html as `cid:<contentId>`. */
  contentId?: string;
}

const noLineBreaks = (what: string) => z.string().refine((v) => !/[\r\n]/.test(v), `${what} must not contain CR or LF`);

/** C0 controls and DEL, except TAB (folding whitespace in RFC 5322): none belongs in a header. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/** Text that goes into a header: no line breaks (header injection), no other control characters. */
const headerText = (what: string) => noLineBreaks(what).refine((v) => !CONTROL.test(v), `${what} must not contain control characters`);

/**
 * Header names Exchange Online keeps for itself: a message setting them could pose as scanned,
 * trusted or internal (X-MS-Exchange-Organization-SCL: -1 skips spam filtering).
 */
const RESERVED_HEADER = /^X-(MS-Exchange-|Forefront-|Microsoft-Antispam)/i;

const addressInput = z.union([z.string(), z.object({ name: z.string().optional(), address: z.string() }).strict()]);

/** An address or a list; each element is checked with the address parser. */
const addressList = z
  .union([addressInput, z.array(addressInput)])
  .transform((value, ctx): Address[] => {
    const items = Array.isArray(value) ? value : [value];
    const out: Address[] = [];
    items.forEach((item, index) => {
      const parsed = parseAddress(item);
      if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed, path: Array.isArray(value) ? [index] : [] });
      else out.push(parsed);
    });
    return out;
  });

/** Canonical base64 only: Buffer.from silently skips junk, so check the alphabet and padding first. */
const base64 = z
  .string()
  .transform((v) => v.replace(/\s+/g, ''))
  // Length and a flat character class, not a repeated 4-character group: V8 recurses per repetition and overflows its stack on attachments of a few MB.
  .refine((v) => v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v), 'must be base64');

/**
 * A file name, not a path: a receiving client or a script saving attachments may take `../` or
 * `C:\` at its word, and control characters have no place in a Content-Disposition.
 */
const filename = noLineBreaks('filename').pipe(
  z
    .string()
    .min(1)
    .max(255)
    .refine((v) => !/[/\\\x00-\x1f\x7f]/.test(v) && !/^\.+$/.test(v), 'must be a file name without /, \\ or control characters'),
);

const attachmentInput = z
  .object({
    filename,
    contentType: z
      .string()
      .regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type such as application/pdf')
      .default('application/octet-stream'),
    content: base64,
    // RFC 2392: the id is an addr-spec, so printable ASCII; the brackets are ours to add.
    contentId: noLineBreaks('contentId').pipe(z.string().regex(/^[\x21-\x3b\x3d\x3f-\x7e]{1,200}$/, 'must be printable ASCII without <, > or spaces')).optional(),
  })
  .strict();

/** The body of POST /api/send (and the CLI's --json). */
export const sendRequestSchema = z
  .object({
    profile: z.string().min(1).optional(),
    from: addressInput.optional(),
    to: addressList.optional(),
    cc: addressList.optional(),
    bcc: addressList.optional(),
    replyTo: addressList.optional(),
    subject: headerText('subject').pipe(z.string().max(998)).default(''),
    text: z.string().optional(),
    html: z.string().optional(),
    importance: z.enum(['low', 'normal', 'high']).default('normal'),
    headers: z
      .record(
        z.string().regex(/^X-[A-Za-z0-9-]+$/i, 'only custom X- headers may be set').refine((name) => !RESERVED_HEADER.test(name), 'is a header Exchange Online reserves (X-MS-Exchange-*, X-Forefront-*, X-Microsoft-Antispam*)'),
        headerText('header value').pipe(z.string().max(998)),
      )
      .default({}),
    attachments: z.array(attachmentInput).default([]),
  })
  .strict();

export type SendRequest = z.output<typeof sendRequestSchema>;
export type SendRequestInput = z.input<typeof sendRequestSchema>;
