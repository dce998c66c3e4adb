import type { GovernorHealth } from '../governor/index.js';
import { readCredentialExpiry, type CredentialExpiry } from '../identity/credentialExpiry.js';
import { describeSource } from '../profiles/describe.js';
import { receivingProfiles } from '../receive/pollMailbox.js';
import { isPushProfile, subscriptionState, type SubscriptionState } from '../receive/push.js';
import { redact, redactValue } from '../redact.js';
import type { MailRuntime } from '../runtime.js';
import type { PollStatusRecord, StoredPollStatus, SubscriptionRecord } from '../state/index.js';

/**
 * Five ticks of the default one-minute POLL_SCHEDULE: a poll waits on the queue, may run up to
 * POLL_MAX_DURATION_SECONDS, and one failed tick should not page anyone. With another schedule,
 * set HEALTH_STALE_AFTER_SECONDS to about three of its intervals.
 */

/**
 * How long the health endpoints wait for state storage: well under the minute after which App
 * Service counts a health check ping as failed, so that an outage answers 503 rather than nothing.
 */
const STORAGE_READ_TIMEOUT_MS = 10_000;

/**
 * ok: the last poll did not fail and one completed within HEALTH_STALE_AFTER_SECONDS; failing:
 * the last poll failed; stale: none completed recently (never polled, every poll aborted at its
 * deadline, or the timer or queue is not running).
 */
export type ReceivingState = 'ok' | 'failing' | 'stale';

/** What anyone may see, without a key: counts, never a profile name, a mailbox or an error text. */
export interface HealthReport {
  status: 'ok';
  /** How many profiles are configured (they were validated to get here). */
  profiles: number;
  source: string;
  receiving: Record<ReceivingState, number>;
}

export interface ProfileHealth {
  name: string;
  mailbox: string;
  via: string;
  state: ReceivingState;
  /** No completed poll within HEALTH_STALE_AFTER_SECONDS (a failing profile is stale too once that passes). */
  stale: boolean;
  lastPollAt: string | null;
  lastStatus: PollStatusRecord['lastStatus'] | null;
  lastCompletedAt: string | null;
  lastDeliveredAt: string | null;
  consecutiveFailures: number;
  lastError: { code: string; message: string; hint?: string; at: string } | null;
  lastCounts: PollStatusRecord['lastCounts'] | null;
  /** A push profile's (receive.push) Graph subscription; absent for the others. Never its clientState. */
  push?: PushHealth;
}

export interface PushHealth {
  /** active: notifications come; failing: the last create or renewal failed (the regular timer polls the profile again); expired; missing: not made yet (the first poll makes it). */
  state: SubscriptionState;
  subscriptionId: string | null;
  expiresAt: string | null;
  lastRenewedAt: string | null;
  consecutiveFailures: number;
  lastError: { code: string; message: string; hint?: string; at: string } | null;
}

export interface ProfilesHealthReport {
  /** Every receiving profile is `ok`, every push profile's subscription `active`, and no profile's client secret or certificate is expired or unreadable. */
  ok: boolean;
  checkedAt: string;
  staleAfterSeconds: number;
  profiles: ProfileHealth[];
  /** CREDENTIAL_EXPIRY_WARNING_DAYS: from this many days before its date a credential is `expiring`. */
  credentialExpiryWarningDays: number;
  /** Every profile (sending or receiving) whose auth reads a client secret or certificate: when it expires. */
  credentials: CredentialExpiry[];
  /**
   * Per profile under the governor (Graph, or sending through Graph or SMTP), as every instance
   * together left it in storage: the Graph request budget of its app and mailbox (used and left in
   * the sliding 10 minutes, the throttled answers Graph gave anyway, the waits for a slot) and its
   * mailbox's send pace. Empty without state storage.
   */
  governor: GovernorHealth[];
}

export type { GovernorHealth } from '../governor/index.js';

export interface HealthOptions {
  /** The clock; now by default. */
  now?: Date;
  abortSignal?: AbortSignal;
}

/**
 * Per receiving profile: when it was last polled, how that went, and whether it is failing or
 * stale. Reads one table query; a profile never polled shows nulls and counts as stale. Per
 * profile with a client secret or certificate: when it expires, days left, and its state.
 */
export async function profilesHealth(runtime: MailRuntime, options: HealthOptions = {}): Promise<ProfilesHealthReport> {
  const now = options.now ?? new Date();
  const [receiving, credentials, governor] = await Promise.all([
    receivingHealth(runtime, now, options),
    credentialsHealth(runtime, now, options),
    runtime.governor?.health(runtime.profiles.profiles.values(), { abortSignal: options.abortSignal ?? AbortSignal.timeout(STORAGE_READ_TIMEOUT_MS) }) ?? [],
  ]);
  const ok = receiving.profiles.every((p) => p.state === 'ok' && (p.push === undefined || p.push.state === 'active')) && credentials.every((c) => c.state !== 'expired' && c.state !== 'unreadable');
  return { ok, checkedAt: now.toISOString(), ...receiving, credentialExpiryWarningDays: runtime.settings.credentialExpiryWarningDays, credentials, governor };
}

/**
 * The expiry of every profile's client secret or certificate, read through the secret store
 * (its cache: the version this process uses), each recorded in the runtime's watch, which warns
 * in the log when one is due. Bounded like the storage read.
 */
async function credentialsHealth(runtime: MailRuntime, now: Date, options: HealthOptions): Promise<CredentialExpiry[]> {
  const abortSignal = options.abortSignal ?? AbortSignal.timeout(STORAGE_READ_TIMEOUT_MS);
  const read = [...runtime.profiles.profiles.values()].map((profile) =>
    readCredentialExpiry(profile, runtime.secrets, { warningDays: runtime.settings.credentialExpiryWarningDays, now, abortSignal }),
  );
  const credentials = (await Promise.all(read)).filter((c): c is CredentialExpiry => c !== undefined);
  for (const credential of credentials) runtime.credentialExpiry.record(credential);
  // Redacted here too: an unreadable one carries the store's hint.
  return credentials.map((c) => redactValue(c));
}

/** The receiving profiles' poll records, one table query. */
async function receivingHealth(runtime: MailRuntime, now: Date, options: HealthOptions): Promise<Pick<ProfilesHealthReport, 'staleAfterSeconds' | 'profiles'>> {
  const staleAfter = runtime.settings.healthStaleAfterSeconds;
  const profiles = receivingProfiles(runtime);
  const abortSignal = options.abortSignal ?? AbortSignal.timeout(STORAGE_READ_TIMEOUT_MS);
  const [stored, subscriptions] = await Promise.all([
    profiles.length === 0 ? new Map<string, StoredPollStatus>() : runtime.state.pollStatus.list({ abortSignal }),
    profiles.some(isPushProfile) ? runtime.state.subscriptions.list({ abortSignal }) : new Map<string, SubscriptionRecord>(),
  ]);
  const health = profiles.map((profile): ProfileHealth => {
    const row = stored.get(profile.name);
    // Shown as never polled (stale), so that one odd row does not take the whole report down; the next poll rewrites it.
    if (row?.unreadable !== undefined) {
      runtime.logger.warn({ operation: 'health', profile: profile.name, outcome: 'error', code: 'ESTATE', error: `the poll status row is not readable (${row.unreadable})` });
    }
    const record = row?.record;
    const completedAt = record?.lastCompletedAt === undefined ? undefined : Date.parse(record.lastCompletedAt);
    const stale = completedAt === undefined || now.getTime() - completedAt > staleAfter * 1000;
    return {
      name: profile.name,
      mailbox: profile.mailbox,
      via: profile.receive.via,
      state: record?.lastStatus === 'failed' ? 'failing' : stale ? 'stale' : 'ok',
      stale,
      lastPollAt: record?.lastPollAt ?? null,
      lastStatus: record?.lastStatus ?? null,
      lastCompletedAt: record?.lastCompletedAt ?? null,
      lastDeliveredAt: record?.lastDeliveredAt ?? null,
      consecutiveFailures: record?.consecutiveFailures ?? 0,
      lastError: record?.lastError ? redactedError(record.lastError) : null,
      lastCounts: record?.lastCounts ?? null,
      ...(isPushProfile(profile) && { push: pushHealth(subscriptions.get(profile.name), now) }),
    };
  });
  return { staleAfterSeconds: staleAfter, profiles: health };
}

function pushHealth(record: SubscriptionRecord | undefined, now: Date): PushHealth {
  return {
    state: subscriptionState(record, now),
    subscriptionId: record?.subscriptionId ?? null,
    expiresAt: record?.expiresAt ?? null,
    lastRenewedAt: record?.lastRenewedAt ?? null,
    consecutiveFailures: record?.consecutiveFailures ?? 0,
    lastError: record?.lastError ? redactedError(record.lastError) : null,
  };
}

/** Redacted when recorded; again here, against a value registered since in this process. */
function redactedError(error: { code: string; message: string; hint?: string; at: string }): { code: string; message: string; hint?: string; at: string } {
  return { ...error, message: redact(error.message), ...(error.hint !== undefined && { hint: redact(error.hint) }) };
}

/**
 * Liveness: the profiles and settings are valid (else ECONFIG is thrown) and state storage
 * answers (else ESTATE), plus how many receiving profiles are ok, failing or stale.
 */
export async function healthReport(runtime: MailRuntime, options: HealthOptions = {}): Promise<HealthReport> {
  const receiving: Record<ReceivingState, number> = { ok: 0, failing: 0, stale: 0 };
  // The anonymous answer reads no secret: probes every minute must not become vault reads.
  for (const profile of (await receivingHealth(runtime, options.now ?? new Date(), options)).profiles) receiving[profile.state]++;
  return { status: 'ok', profiles: runtime.profiles.profiles.size, source: describeSource(runtime.profiles), receiving };
}
