import type { RedeliverResult } from '../receive/redeliver.js';
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { DiagnosisReport, DiagnosisStepName } from '../diagnose/diagnoseProfile.js';
import { receivingStateSchema } from '../health/reportSchemas.js';
import type { GovernorHealth, ProfilesHealthReport } from '../health/report.js';
import { problemSchema } from '../http/problemSchema.js';
import type { CredentialExpiry } from '../identity/credentialExpiry.js';
import type { PollResult } from '../receive/pollMailbox.js';
import { POLL_OUTCOMES } from '../state/pollStatusStore.js';

/*
 * The answers whose types live in identity/ and receive/: their schemas are here rather than
 * beside those types so that nothing in those folders builds a zod schema at start-up for a
 * document only this part serves. Each is checked against its type by `satisfies`, and the
 * tests hold real answers to the document.
 */

const errorCode = z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);
const count = z.number().int().nonnegative();
const timestamp = z.iso.datetime();

export const credentialExpirySchema = z.object({
  profile: z.string(),
  credential: z.enum(['clientSecret', 'certificate']),
  secret: z.string().meta({ description: 'The name of the secret it is kept under (never its value).' }),
  expiresOn: timestamp.nullable(),
  daysLeft: z.number().int().nullable(),
  source: z.enum(['keyVault', 'certificate']).nullable(),
  state: z.enum(['ok', 'expiring', 'expired', 'unknown', 'unreadable']),
  hint: z.string().optional(),
  code: errorCode.optional(),
}) satisfies z.ZodType<CredentialExpiry>;

const pollCounts = z.object({ delivered: count, filtered: count, duplicates: count, deadLettered: count, oversized: count, durationMs: z.number().nonnegative() });

const governorHealthSchema = z.object({
  profile: z.string(),
  mailbox: z.string(),
  graph: z.object({
    limit: count.meta({ description: 'graph.requestsPer10Minutes' }),
    used: count.meta({ description: 'Requests counted in the sliding 10 minutes, by every instance.' }),
    left: count,
    throttled: count.meta({ description: 'Throttled answers Graph gave anyway (429, or 503 with Retry-After) since `since`.' }),
    waits: count.meta({ description: 'Graph requests that waited for a concurrency slot since `since`.' }),
    waitSeconds: z.number().nonnegative(),
    since: timestamp.nullable(),
    maxConcurrent: count,
  }).optional(),
  sending: z.object({
    ratePerMinute: count,
    recipientsPerDay: count,
    nextSendAt: timestamp.nullable().meta({ description: 'When the next message may go without waiting; null: now.' }),
    recipients: count.meta({ description: 'Recipients counted in the rolling 24 hours.' }),
  }).optional(),
  error: z.string().optional(),
}) satisfies z.ZodType<GovernorHealth>;

export const profilesHealthReportSchema = z.object({
  ok: z.boolean(),
  checkedAt: timestamp,
  staleAfterSeconds: count,
  profiles: z.array(
    z.object({
      name: z.string(),
      mailbox: z.string(),
      via: z.string(),
      state: receivingStateSchema,
      stale: z.boolean(),
      lastPollAt: timestamp.nullable(),
      lastStatus: z.enum(POLL_OUTCOMES).nullable(),
      lastCompletedAt: timestamp.nullable(),
      lastDeliveredAt: timestamp.nullable(),
      consecutiveFailures: count,
      lastError: z.object({ code: z.string(), message: z.string(), hint: z.string().optional(), at: timestamp }).nullable(),
      lastCounts: pollCounts.nullable(),
      push: z.object({
        state: z.enum(['active', 'failing', 'expired', 'missing']),
        subscriptionId: z.string().nullable(),
        expiresAt: timestamp.nullable(),
        lastRenewedAt: timestamp.nullable(),
        consecutiveFailures: count,
        lastError: z.object({ code: z.string(), message: z.string(), hint: z.string().optional(), at: timestamp }).nullable(),
      }).optional().meta({ description: 'A push profile\'s (receive.push) Graph subscription.' }),
    }),
  ),
  credentialExpiryWarningDays: count,
  credentials: z.array(credentialExpirySchema),
  governor: z.array(governorHealthSchema),
}) satisfies z.ZodType<ProfilesHealthReport>;

const steps = ['config', 'secret', 'token', 'send-connect', 'receive-connect', 'send-test'] as const satisfies readonly DiagnosisStepName[];

export const diagnosisReportSchema = z.object({
  profile: z.string(),
  ok: z.boolean().meta({ description: 'Whether every step passed: the answer is 200 either way.' }),
  steps: z.array(
    z.object({
      step: z.enum(steps),
      ok: z.boolean(),
      durationMs: z.number().nonnegative(),
      detail: z.string().optional(),
      code: errorCode.optional(),
      providerCode: z.string().optional().meta({ description: 'SMTP enhanced status, AADSTS number or Graph error code.' }),
      hint: z.string().optional(),
    }),
  ).meta({ description: 'In order; the first failed step is the last one.' }),
  credential: credentialExpirySchema.optional(),
}) satisfies z.ZodType<DiagnosisReport>;

const pollError = z.object({ code: errorCode, message: z.string(), hint: z.string().optional() });

export const pollResultSchema = z.object({
  profile: z.string(),
  status: z.enum(['completed', 'leased', 'failed', 'aborted']),
  delivered: count,
  filtered: count,
  duplicates: count,
  deadLettered: count,
  oversized: count.meta({ description: 'Of deadLettered, the messages over receive.filters.maxSizeBytes.' }),
  resynced: z.boolean(),
  cursor: z.record(z.string(), z.unknown()).optional().meta({ description: "The reader's cursor as stored: opaque, per transport." }),
  error: pollError.optional(),
  cleanupErrors: z.array(pollError).optional(),
  durationMs: z.number().nonnegative(),
}) satisfies z.ZodType<PollResult>;

/** A failed poll: its problem, with the poll's result beside it. */
export const pollFailureSchema = problemSchema.extend({ poll: pollResultSchema });

export const redeliverResultSchema = z.object({
  profile: z.string(),
  redelivered: z.array(z.string()),
  missing: z.array(z.string()),
  more: z.boolean(),
}) satisfies z.ZodType<RedeliverResult>;
