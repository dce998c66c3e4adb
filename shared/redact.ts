/**
 * Every secret value and access token this process handles is registered here the
 * moment it is read, and every string that leaves the process (log line, HTTP body,
 * CLI output, error text) passes through `redact`. Belt and braces: code also avoids
 * putting secrets into messages in the first place.
 */
const MIN_LENGTH = 6; // shorter values would redact ordinary words

export const REDACTED = '[redacted]';

/**
 * Registered values, oldest registration first, each with its base64 forms and the time it may
 * be forgotten. An access token is forgotten an hour after it expires (nothing presents it after
 * that, so nothing can echo it); without that a process renewing tokens every hour would grow
 * this map, and the work of every `redact` call, for as long as it runs. Secrets have no expiry
 * and stay. MAX_SENSITIVE_VALUES bounds the values that expire: past it, the oldest such
 * registration goes first; a secret is never dropped for room.
 */
// Kept on globalThis: the deployment package loads the functions' registrations and the app from
// two files (scripts/bundle.js), each with its own copy of this module, and a value registered by
// one must be redacted by the other.
const known: Map<string, { forms: string[]; forgetAt: number }> = ((globalThis as Record<symbol, unknown>)[Symbol.for('m365-mail.redact')] ??= new Map()) as Map<string, { forms: string[]; forgetAt: number }>;
export const MAX_SENSITIVE_VALUES = 1000;
const KEEP_AFTER_EXPIRY_MS = 60 * 60 * 1000;

export interface SensitiveOptions {
  /** When the value stops being presented anywhere (a token's expiry, a replaced refresh token's retirement). Absent: never. */
  expiresAt?: number;
}

/** Registers a value for redaction; registering it again refreshes it and replaces its expiry. */
export function registerSensitive(value: string | undefined, options: SensitiveOptions = {}): void {
  if (!value || value.length < MIN_LENGTH) return;
  const now = Date.now();
  const forms = known.get(value)?.forms ?? [...new Set([value, ...base64Forms(value), ...encodedForms(value)])];
  known.delete(value);
  known.set(value, { forms, forgetAt: options.expiresAt === undefined ? Infinity : options.expiresAt + KEEP_AFTER_EXPIRY_MS });
  for (const [registered, entry] of known) if (entry.forgetAt <= now) known.delete(registered);
  // Over the bound, the oldest values that expire go first; a secret (no expiry) is never
  // dropped, or a flood of short-lived values (callers' tokens) could make a vault secret printable.
  for (const [registered, entry] of known) {
    if (known.size <= MAX_SENSITIVE_VALUES) break;
    if (entry.forgetAt !== Infinity) known.delete(registered);
  }
}

/**
 * Tokens also travel base64-encoded inside SASL XOAUTH2 strings
 * (`base64("user=..\x01auth=Bearer <token>\x01\x01")`), where the token starts at any byte
 * offset. Its base64 text then depends on the offset modulo 3: for each of the three, the
 * characters that encode the token's bytes alone, whatever surrounds it.
 */
function base64Forms(value: string): string[] {
  const bytes = Buffer.from(value);
  return [0, 1, 2]
    .map((offset) => {
      const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
      // The first characters mix in the bytes before the token, the last group the bytes after it.
      return encoded.slice(Math.ceil((offset * 4) / 3), Math.floor((offset + bytes.length) / 3) * 4);
    })
    .filter((form) => form.length >= MIN_LENGTH);
}

/**
 * A value also leaves in the forms a URL or a dump gives it: percent-encoded (a query string, a
 * form body: `+` and `/` of a base64 secret become %2B, %2F, in either case of hex digit) and
 * as hex (a buffer printed). The forms that equal the value add nothing and are dropped.
 */
function encodedForms(value: string): string[] {
  const percent = encodeURIComponent(value);
  const formEncoded = new URLSearchParams({ v: value }).toString().slice(2);
  const hex = Buffer.from(value).toString('hex');
  return [percent, percent.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), formEncoded, hex, hex.toUpperCase()].filter((form) => form !== value && form.length >= MIN_LENGTH);
}

const BEARER = /\b(Bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const SECRET_PARAM = /\b(client_secret|refresh_token|access_token|client_assertion|code_verifier|sig)=([^&\s"']+)/gi;

export function redact(text: string): string {
  let out = text;
  for (const { forms } of known.values()) {
    for (const form of forms) if (out.includes(form)) out = out.split(form).join(REDACTED);
  }
  return out.replace(BEARER, `$1${REDACTED}`).replace(JWT, REDACTED).replace(SECRET_PARAM, `$1=${REDACTED}`);
}

/** Deep-redacts the string leaves of a JSON-like value. */
export function redactValue<T>(value: T): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactValue(v)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date) && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactValue(v)])) as T;
  }
  return value;
}
