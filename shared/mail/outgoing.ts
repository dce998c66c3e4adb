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

/*
 * Every check below is a zod check that z.toJSONSchema carries into the OpenAPI document: a
 * `pattern`, or a length (zod counts code points as JSON Schema does). A `.refine`, or anything
 * after a `.pipe`, would be dropped there, and the document would accept what this schema
 * refuses. Patterns are written without flags, since a JSON Schema pattern has none. What no
 * pattern can say is named where it is checked.
 */

const noLineBreaks = (what: string) => z.string().regex(/^[^\r\n]*$/, `${what} must not contain CR or LF`);

/**
 * Text that goes into a header: no line breaks (header injection), no other control characters
 * (C0 and DEL; TAB is folding whitespace in RFC 5322).
 */
const headerText = (what: string) => noLineBreaks(what).regex(/^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$/, `${what} must not contain control characters`);

/** Case-insensitive in a pattern without flags: `[Mm][Ss]-...`. */
const anyCase = (text: string) => text.replace(/[a-z]/gi, (c) => `[${c.toUpperCase()}${c.toLowerCase()}]`);

/**
 * Header names Exchange Online keeps for itself: a message setting them could pose as scanned,
 * trusted or internal (X-MS-Exchange-Organization-SCL: -1 skips spam filtering).
 */
const RESERVED_HEADER = new RegExp(`^(?!${anyCase('X-')}(?:${['MS-Exchange-', 'Forefront-', 'Microsoft-Antispam'].map(anyCase).join('|')}))`);

/** A display name: no line breaks, no control characters, no address (`CEO <ceo@contoso.com>` on an allowed sender shows as the CEO). */
const displayName = headerText('a display name')
  .regex(/^[^<>@]*$/, 'a display name must not carry an address (<, > or @)')
  .meta({ description: 'No <, > or @, nor an RFC 2047 encoded-word that decodes to one.' });

/**
 * The string form ("Name <a@b.c>" or "a@b.c") is read by nodemailer's addressparser in
 * parseAddress: that it holds exactly one valid address, and a display name's RFC 2047
 * encoded-words, are checked there, beyond what a pattern can say. Control characters are refused
 * here, before the parser, which would drop them silently.
 */
const addressInput = z.union([
  // nodemailer's addressparser drops control characters ("ada@exam\x01ple.com" goes out as
  // ada@example.com) and splits on every whitespace JavaScript knows ("ada@example.co\u00a0m" goes
  // out to ada@example.co, named "m"): only spaces and tabs may separate what the client can see.
  headerText('an address')
    .regex(/^[^\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*$/, 'an address must not contain whitespace other than spaces and tabs')
    .meta({ description: 'Exactly one address, "Name <a@example.com>" or "a@example.com", as an RFC 5322 address parser reads it.' }),
  z.object({ name: displayName.optional(), address: z.email('must be an e-mail address') }).strict(),
]);

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

/**
 * Canonical base64 only (Buffer.from silently skips junk), whitespace aside. The pattern is a flat
 * character class, not a repeated 4-character group: V8 recurses per repetition and overflows
 * its stack on attachments of a few MB, in a client validating against the document too. So the
 * length (a multiple of 4) is checked apart, and is the one rule of `content` the document states only in words.
 */
const base64 = z
  .string()
  .regex(/^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/, 'must be base64')
  .refine((v) => v.replace(/\s+/g, '').length % 4 === 0, 'must be base64')
  .meta({ contentEncoding: 'base64', description: 'Base64 (RFC 4648 section 4, padded; whitespace is ignored): the number of base64 characters is a multiple of 4.' })
  .transform((v) => v.replace(/\s+/g, ''));

/**
 * A file name, not a path: a receiving client or a script saving attachments may take `../` or
 * `C:\` at its word, and control characters have no place in a Content-Disposition.
 */
const filename = noLineBreaks('filename')
  .min(1)
  .max(255)
  .regex(/^[^/\\\x00-\x1f\x7f]*$/, 'must be a file name without /, \\ or control characters')
  .regex(/^(?!\.+$)/, 'must be a file name, not . or ..')
  // Bidirectional controls reorder what a mail client shows: "invoice\u202Efdp.exe" reads as "invoiceexe.pdf".
  .regex(/^[^\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]*$/, 'must be a file name without bidirectional control characters (they disguise the extension)');

const attachmentInput = z
  .object({
    filename,
    contentType: z
      .string()
      .regex(/^[\w.+-]+\/[\w.+-]+$/, 'must be a MIME type such as application/pdf')
      .default('application/octet-stream'),
    content: base64,
    // RFC 2392: the id is an addr-spec, so printable ASCII; the brackets are ours to add.
    contentId: noLineBreaks('contentId').regex(/^[\x21-\x3b\x3d\x3f-\x7e]{1,200}$/, 'must be printable ASCII without <, > or spaces').optional(),
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
    subject: headerText('subject').max(998).default(''),
    text: z.string().optional(),
    html: z.string().optional(),
    importance: z.enum(['low', 'normal', 'high']).default('normal'),
    headers: z
      .record(
        z.string().regex(/^[Xx]-[A-Za-z0-9-]+$/, 'only custom X- headers may be set').regex(RESERVED_HEADER, 'is a header Exchange Online reserves (X-MS-Exchange-*, X-Forefront-*, X-Microsoft-Antispam*)'),
        headerText('header value').max(998),
      )
      .default({}),
    attachments: z.array(attachmentInput).default([]),
  })
  .strict();

export type SendRequest = z.output<typeof sendRequestSchema>;
export type SendRequestInput = z.input<typeof sendRequestSchema>;
