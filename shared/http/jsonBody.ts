import type { HttpRequest } from '@azure/functions';
import { MailError } from '../errors.js';

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/**
 * Checks a request's Content-Type: JSON (`application/json`, `application/*+json`) or
 * absent, which is taken as JSON so that a bare `curl --data` still works.
 */
export function assertJsonContentType(contentType: string | null | undefined): void {
  if (contentType && !JSON_TYPE.test(contentType.trim())) {
    throw new MailError('EINPUT', `unsupported content type ${contentType}`, {
      field: 'content-type',
      hint: 'Send the message with Content-Type: application/json.',
    });
  }
}

/** Parses a JSON object (the HTTP body, or the CLI's --json file); anything else is EINPUT on `body`. */
export function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the input: the caller has it already, and logs must not.
    throw new MailError('EINPUT', 'the body is not valid JSON', {
      field: 'body',
      hint: 'Send one JSON object, e.g. {"to": "someone@example.com", "subject": "hi", "text": "hello"}.',
    });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MailError('EINPUT', 'the body must be a JSON object', {
      field: 'body',
      hint: 'Send one JSON object, not an array, string or number.',
    });
  }
  return value as Record<string, unknown>;
}

/**
 * The request body as text, refused with ETOO_LARGE past `maxBytes` before it is all read, let
 * alone parsed: a Content-Length over the limit is refused unread, and a body without one is
 * read only up to the limit. Without this a body up to the host's own limit (100 MB) became one
 * string, then a parsed object, before any check looked at its size.
 */
export async function readBodyText(request: Pick<HttpRequest, 'headers' | 'body'>, maxBytes: number): Promise<string> {
  const tooLarge = () =>
    new MailError('ETOO_LARGE', `the request body is over ${maxBytes} bytes`, {
      field: 'body',
      hint: 'Send a smaller message: fewer or smaller attachments, or a link to the file.',
    });
  if (Number(request.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge();
  if (!request.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.body as ReadableStream<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes) throw tooLarge();
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  return Buffer.concat(chunks).toString('utf8');
}
