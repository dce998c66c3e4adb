import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { MailError } from '../errors.js';

/**
 * What the connect step remembers for the callback: the PKCE verifier, the expected state
 * and nonce, and the redirect URI. It travels in a cookie sealed with AES-256-GCM under a key
 * derived from the OAUTH_STATE_KEY setting, so no storage is needed and any instance can
 * finish a consent another instance started. The cookie also binds the callback to the browser
 * that started the consent (a state alone would let someone hand an admin a callback URL for
 * their own account).
 */
export const consentStateSchema = z
  .object({
    v: z.literal(1),
    profile: z.string().min(1),
    state: z.string().min(32),
    nonce: z.string().min(16),
    verifier: z.string().min(43),
    redirectUri: z.url(),
    /** Expiry, epoch milliseconds. */
    exp: z.number().int(),
  })
  .strict();

export type ConsentState = z.output<typeof consentStateSchema>;

/** How long a consent may take from connect to callback. */
export const CONSENT_TTL_MS = 10 * 60 * 1000;

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** The 32-byte sealing key derived from OAUTH_STATE_KEY; ECONFIG naming the setting when it is missing or short. */
export function consentStateKey(setting: string | undefined): Buffer {
  const secret = setting ?? '';
  if (secret.length < 32) {
    throw new MailError('ECONFIG', 'OAUTH_STATE_KEY is not set or shorter than 32 characters', {
      field: 'OAUTH_STATE_KEY',
      hint: 'Set the app setting OAUTH_STATE_KEY to a random value of at least 32 characters (e.g. `openssl rand -base64 32`), the same on every instance.',
    });
  }
  return Buffer.from(hkdfSync('sha256', secret, 'm365-mail-functions', 'consent state v1', 32));
}

export function sealConsentState(state: ConsentState, key: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(state), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

/** The sealed state if it is authentic and current; ECONSENT saying what is wrong otherwise. */
export function openConsentState(sealed: string, key: Buffer, now: number = Date.now()): ConsentState {
  const raw = Buffer.from(sealed, 'base64url');
  let text: string;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    text = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch (error) {
    throw new MailError('ECONSENT', 'the consent cookie is not authentic (altered, or sealed with another OAUTH_STATE_KEY)', {
      hint: 'Start again at GET /api/connect/{profile}; every instance must share one OAUTH_STATE_KEY.',
      cause: error,
    });
  }
  const parsed = consentStateSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new MailError('ECONSENT', 'the consent cookie has an unknown format', { hint: 'Start again at GET /api/connect/{profile}.' });
  if (parsed.data.exp < now) {
    throw new MailError('ECONSENT', `the consent for profile "${parsed.data.profile}" took longer than ${CONSENT_TTL_MS / 60_000} minutes`, {
      profile: parsed.data.profile,
      hint: `Start again at GET /api/connect/${parsed.data.profile}.`,
    });
  }
  return parsed.data;
}
