import { z } from 'zod';
import type { HealthReport, ReceivingState } from './report.js';

/** The states of a receiving profile, for the OpenAPI document (report.ts says what each means). */
export const receivingStateSchema = z.enum(['ok', 'failing', 'stale']) satisfies z.ZodType<ReceivingState>;

const count = z.number().int().nonnegative();

/** What GET /api/health answers when the app can work: counts only, loaded only when the document is built. */
export const healthReportSchema = z.object({
  status: z.literal('ok'),
  profiles: count.meta({ description: 'How many profiles are configured.' }),
  source: z.string(),
  receiving: z.object({ ok: count, failing: count, stale: count }),
}) satisfies z.ZodType<HealthReport>;
