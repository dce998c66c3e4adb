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
