import { MailError, type ErrorCode } from '../errors.js';
import { statusOf } from '../state/storage.js';
import { DEFAULT_SEND_RETRY_BASE_SECONDS } from '../config/settings.js';

/**
 * Errors after which the same message may well go through later: the provider throttled or
 * was unavailable, or the network failed. Everything else (a refused
 * token after the one renewal, Send As denied, a rejected or oversized message, a missing
 * mailbox) fails the same way every time, so the send fails at once.
 */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['ETHROTTLED', 'EUNAVAILABLE', 'ECONNECTION']);

export function isTransient(error: MailError): boolean {
  if (TRANSIENT_CODES.has(error.code)) return true;
  // Entra answering with an AADSTS code (wrong secret, no consent, unknown app) is permanent;
  // no answer at all (network, an Entra outage) is not.
  if (error.code === 'ETOKEN') return error.providerCode === undefined;
  // A proxy refusing the tunnel (407, 403) does so every time; one that cannot be reached, or cannot reach the provider (5xx), may not later.
  if (error.code === 'EPROXY') return error.providerCode === undefined || Number(error.providerCode) >= 500;
  // The vault refusing access is permanent; the vault not answering is not.
  if (error.code === 'ESECRET_ACCESS') {
    const status = statusOf(error.cause);
    return status !== 401 && status !== 403;
  }
  return false;
}

/** Back-off before attempt 2 (SEND_RETRY_BASE_SECONDS, default 30), doubling per attempt up to RETRY_MAX_SECONDS. */
const RETRY_MAX_SECONDS = 60 * 60;

/**
 * Seconds to wait after the `attempt`-th failed attempt: exponential back-off with jitter
 * (half fixed, half random, so that messages throttled together do not all come back
 * together), and never less than the provider's Retry-After.
 */
export function retryDelaySeconds(attempt: number, retryAfter: number | undefined, random: () => number = Math.random, baseSeconds = DEFAULT_SEND_RETRY_BASE_SECONDS): number {
  const backoff = Math.min(RETRY_MAX_SECONDS, baseSeconds * 2 ** Math.max(0, attempt - 1));
  const jittered = backoff / 2 + (random() * backoff) / 2;
  return Math.ceil(Math.max(retryAfter ?? 0, jittered));
}
