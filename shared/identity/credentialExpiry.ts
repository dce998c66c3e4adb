import { X509Certificate } from 'node:crypto';
import type { Profile } from '../config/profiles.js';
import { isMailError, MailError, type ErrorCode } from '../errors.js';
import { errorDetail, type Logger } from '../log.js';
import type { SecretRead, SecretStore } from '../secrets/store.js';

/**
 * ok: more than the warning days left; expiring: within them; expired: past its date (Entra
 * refuses an expired client secret or certificate, and mail stops); unknown: no date is known
 * (the app settings keep none, or the vault's secret has no expiration date set); unreadable:
 * the secret could not be read (code and hint say why).
 */
export type CredentialState = 'ok' | 'expiring' | 'expired' | 'unknown' | 'unreadable';

/** When a profile's client secret or certificate expires. Never its value. */
export interface CredentialExpiry {
  profile: string;
  /** What expires: a client secret (auth types clientSecret, delegated with a secret) or a certificate. */
  credential: 'clientSecret' | 'certificate';
  /** The name of the secret it is kept under. */
  secret: string;
  /** The earliest of the vault version's expiry date and the certificate's notAfter, ISO 8601; null when neither is known. */
  expiresOn: string | null;
  /** Whole days until expiresOn, rounded down: 0 on the last day, negative once expired. */
  daysLeft: number | null;
  /** Where expiresOn comes from. */
  source: 'keyVault' | 'certificate' | null;
  state: CredentialState;
  /** What to do (expiring, expired, unknown), or why it could not be read (unreadable). */
  hint?: string;
  /** unreadable: the code of the failed read. */
  code?: ErrorCode;
}

export interface CredentialExpiryOptions {
  /** From this many days before its date a credential is `expiring` (CREDENTIAL_EXPIRY_WARNING_DAYS). */
  warningDays: number;
  now?: Date;
}

const DAY_MS = 24 * 3600 * 1000;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

/** The labelled blocks of a PEM text, in order. */
export function pemBlocks(pem: string): Array<{ label: string; text: string }> {
  return [...pem.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1]!, text: m[0] }));
}

/** The secret holding what expires in a profile's auth, if any (managed identity, federated and none hold nothing that expires). */
export function expiringCredentialOf(profile: Profile): { credential: CredentialExpiry['credential']; secret: string } | undefined {
  const auth = profile.auth;
  if (auth.type === 'clientSecret') return { credential: 'clientSecret', secret: auth.secret };
  if (auth.type === 'certificate') return { credential: 'certificate', secret: auth.certificate };
  if (auth.type === 'delegated' && auth.secret !== undefined) return { credential: 'clientSecret', secret: auth.secret };
  return undefined;
}

/** The first certificate's notAfter; ECERTIFICATE when the PEM holds none that can be read (`m365-mail test` says more). */
function certificateNotAfter(pem: string, secret: string): Date {
  const block = pemBlocks(pem).find((b) => b.label === 'CERTIFICATE');
  const unreadable = (cause?: unknown) =>
    new MailError('ECERTIFICATE', `secret "${secret}": ${block ? 'the certificate cannot be read' : 'the PEM holds no certificate'}`, {
      field: 'auth.certificate',
      hint: `Store the certificate and its unencrypted private key together as PEM in the secret "${secret}"; m365-mail test checks it.`,
      cause,
    });
  if (!block) throw unreadable();
  try {
    return new Date(new X509Certificate(block.text).validTo);
  } catch (error) {
    throw unreadable(error);
  }
}

/** The expiry of the credential in `read`, the secret `held` of `profile` names, kept in a `store` of that kind; ECERTIFICATE for a PEM without a readable certificate. */
export function credentialExpiryOf(
  profile: Profile,
  held: { credential: CredentialExpiry['credential']; secret: string },
  read: SecretRead,
  options: CredentialExpiryOptions & { store: SecretStore['kind'] },
): CredentialExpiry {
  const now = options.now ?? new Date();
  const dates: Array<[Date, 'keyVault' | 'certificate']> = [];
  if (read.expiresOn !== undefined) dates.push([read.expiresOn, 'keyVault']);
  const notAfter = held.credential === 'certificate' ? certificateNotAfter(read.value, held.secret) : undefined;
  if (notAfter !== undefined) dates.push([notAfter, 'certificate']);
  const earliest = dates.sort(([a], [b]) => a.getTime() - b.getTime())[0];
  const base = { profile: profile.name, ...held };
  if (!earliest) return { ...base, expiresOn: null, daysLeft: null, source: null, state: 'unknown', hint: unknownHint(held, options.store) };
  const [date, source] = earliest;
  const left = date.getTime() - now.getTime();
  const daysLeft = Math.floor(left / DAY_MS);
  const state: CredentialState = left <= 0 ? 'expired' : left <= options.warningDays * DAY_MS ? 'expiring' : 'ok';
  const expiry: CredentialExpiry = { ...base, expiresOn: date.toISOString(), daysLeft, source, state };
  return state === 'ok' ? expiry : { ...expiry, hint: renewHint(held, state, date, daysLeft) };
}

function renewHint(held: { credential: CredentialExpiry['credential']; secret: string }, state: 'expiring' | 'expired', date: Date, daysLeft: number): string {
  const what = held.credential === 'certificate' ? 'certificate' : 'client secret';
  const when = state === 'expired' ? `expired on ${date.toISOString()}` : `expires on ${date.toISOString()} (${daysLeft} day${daysLeft === 1 ? '' : 's'} left)`;
  const renew =
    held.credential === 'certificate'
      ? `create a new certificate, upload its public part to the app registration (Certificates & secrets) and store the new PEM in "${held.secret}"`
      : `create a new client secret on the app registration (Certificates & secrets) and store it as a new version of "${held.secret}" with its end date as the expiration date`;
  return `The ${what} in "${held.secret}" ${when}: ${renew}; the app reads it again within SECRET_CACHE_TTL_SECONDS, and at once after an authentication failure.`;
}

function unknownHint(held: { credential: CredentialExpiry['credential']; secret: string }, store: SecretStore['kind']): string {
  if (store === 'keyVault') return `The vault's secret "${held.secret}" has no expiration date: set it to the ${held.credential === 'certificate' ? 'certificate\'s notAfter' : 'client secret\'s end date'} (az keyvault secret set-attributes --expires) so that the app can warn before it expires.`;
  return `The app settings keep no expiry date: keep "${held.secret}" in Key Vault (KEY_VAULT_URL) with its expiration date set, or watch its end date on the app registration.`;
}

/**
 * Reads the profile's credential through the store (the cached version the credentials were
 * built from, when the cache holds it) and tells when it expires; undefined for a profile with
 * nothing that expires. A read the store refuses is `unreadable` with its code and hint; any
 * other failure is a bug and is thrown.
 */
export async function readCredentialExpiry(profile: Profile, secrets: SecretStore, options: CredentialExpiryOptions & { abortSignal?: AbortSignal }): Promise<CredentialExpiry | undefined> {
  const held = expiringCredentialOf(profile);
  if (!held) return undefined;
  try {
    const read = await readWithProperties(secrets, held.secret, options.abortSignal);
    return credentialExpiryOf(profile, held, read, { ...options, store: secrets.kind });
  } catch (error) {
    if (!isMailError(error)) throw error;
    return { profile: profile.name, ...held, expiresOn: null, daysLeft: null, source: null, state: 'unreadable', code: error.code, hint: error.hint ?? error.message };
  }
}

/** A store's read with the version's properties, or the bare value from a store that keeps none. */
export async function readWithProperties(secrets: SecretStore, name: string, abortSignal?: AbortSignal): Promise<SecretRead> {
  return secrets.readSecret ? secrets.readSecret(name, { abortSignal }) : { value: await secrets.getSecret(name, { abortSignal }) };
}

export interface CredentialExpiryWatchOptions {
  warningDays: number;
  logger: Logger;
  now?: () => number;
}

/** A credential is read again for the watch at most this often per profile. */
const OBSERVE_INTERVAL_MS = 3600_000;
/** An expiring or expired credential is written to the log at most this often per profile. */
const WARN_INTERVAL_MS = DAY_MS;

/**
 * The latest known expiry of every profile's credential in this process, and the log warning
 * from CREDENTIAL_EXPIRY_WARNING_DAYS before its date (once a day per profile; an expired one
 * as an error). Fed by each profile's token provider (checked at most hourly, after a token
 * was obtained) and by whatever reads an expiry itself (the health report).
 *
 * `snapshot()` is what a metric reads: issue 10's OpenTelemetry work turns it into an
 * observable gauge (days left per profile, `mail.secret.days_left`).
 */
export class CredentialExpiryWatch {
  readonly warningDays: number;
  private readonly latest = new Map<string, CredentialExpiry>();
  private readonly observedAt = new Map<string, number>();
  private readonly warnedAt = new Map<string, number>();
  private readonly logger: Logger;
  private readonly now: () => number;

  constructor(options: CredentialExpiryWatchOptions) {
    this.warningDays = options.warningDays;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
  }

  /** Keeps an expiry read elsewhere as the latest, and warns about it when due. */
  record(expiry: CredentialExpiry): void {
    this.latest.set(expiry.profile, expiry);
    if (expiry.state !== 'expiring' && expiry.state !== 'expired') return;
    const last = this.warnedAt.get(expiry.profile);
    if (last !== undefined && this.now() - last < WARN_INTERVAL_MS) return;
    this.warnedAt.set(expiry.profile, this.now());
    const event = {
      operation: 'credentialExpiry',
      profile: expiry.profile,
      state: expiry.state,
      credential: expiry.credential,
      secret: expiry.secret,
      expiresOn: expiry.expiresOn,
      daysLeft: expiry.daysLeft,
      hint: expiry.hint,
    };
    if (expiry.state === 'expired') this.logger.error({ ...event, outcome: 'error' });
    else this.logger.warn(event);
  }

  /** Reads and records the profile's credential expiry unless that was done within the hour. Never rejects: a failed read is recorded as unreadable, a bug logged. */
  async observe(profile: Profile, secrets: SecretStore): Promise<void> {
    const last = this.observedAt.get(profile.name);
    if (last !== undefined && this.now() - last < OBSERVE_INTERVAL_MS) return;
    this.observedAt.set(profile.name, this.now());
    try {
      const expiry = await readCredentialExpiry(profile, secrets, { warningDays: this.warningDays, now: new Date(this.now()) });
      if (expiry) this.record(expiry);
    } catch (error) {
      this.logger.error({ operation: 'credentialExpiry', profile: profile.name, outcome: 'error', error: errorDetail(error) });
    }
  }

  /** The latest known expiry per profile (profiles with nothing that expires are absent). */
  snapshot(): CredentialExpiry[] {
    return [...this.latest.values()];
  }
}
