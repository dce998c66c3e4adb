/**
 * Every secret value and access token this process handles is registered here the
 * moment it is read, and every string that leaves the process (log line, HTTP body,
 * CLI output, error text) passes through `redact`. Belt and braces: code also avoids
 * putting secrets into messages in the first place.
 */
const known = new Set<string>();
const MIN_LENGTH = 6; // shorter values would redact ordinary words

export const REDACTED = '[redacted]';

export function registerSensitive(value: string | undefined): void {
  if (!value || value.length < MIN_LENGTH) return;
  known.add(value);
  // Tokens also travel base64-encoded inside SASL XOAUTH2 strings.
  const b64 = Buffer.from(value).toString('base64');
  known.add(b64.replace(/=+$/, ''));
}

const BEARER = /\b(Bearer\s+)[A-Za-z0-9\-._~+/]+=*/gi;
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g;
const SECRET_PARAM = /\b(client_secret|refresh_token|access_token|client_assertion|code_verifier|sig)=([^&\s"']+)/gi;

export function redact(text: string): string {
  let out = text;
  for (const value of known) if (out.includes(value)) out = out.split(value).join(REDACTED);
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
