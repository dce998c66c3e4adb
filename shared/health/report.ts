import { describeSource } from '../profiles/describe.js';
import type { MailRuntime } from '../runtime.js';

export interface HealthReport {
  status: 'ok';
  /** How many profiles are configured (they were validated to get here). */
  profiles: number;
  source: string;
}

/** Liveness: the process is up and its profiles are valid (an invalid document throws ECONFIG). */
export function healthReport(runtime: MailRuntime): HealthReport {
  return { status: 'ok', profiles: runtime.profiles.profiles.size, source: describeSource(runtime.profiles) };
}
