/** Every minute, at second 0 (NCRONTAB with seconds, as Azure Functions timers use). */
export const DEFAULT_POLL_SCHEDULE = '0 */1 * * * *';

/**
 * The timer's schedule: the app setting's *name* when POLL_SCHEDULE is set, so the host
 * resolves it (and a change needs no redeploy); the default otherwise, because the host
 * refuses to start a timer whose `%SETTING%` does not resolve.
 */
export function pollSchedule(env: NodeJS.ProcessEnv = process.env): string {
  return timerSchedule('POLL_SCHEDULE', env.POLL_SCHEDULE, DEFAULT_POLL_SCHEDULE);
}

/** Every 15 minutes: how often push profiles whose subscription is active are polled all the same (a notification lost, or none sent). */
export const DEFAULT_PUSH_FALLBACK_SCHEDULE = '0 */15 * * * *';

/** The pollFallback timer's schedule: PUSH_FALLBACK_SCHEDULE, as pollSchedule. */
export function pushFallbackSchedule(env: NodeJS.ProcessEnv = process.env): string {
  return timerSchedule('PUSH_FALLBACK_SCHEDULE', env.PUSH_FALLBACK_SCHEDULE, DEFAULT_PUSH_FALLBACK_SCHEDULE);
}

/** Twice an hour: subscriptions are renewed well before they expire, and a failed one is tried again. */
export const DEFAULT_SUBSCRIPTION_RENEW_SCHEDULE = '0 7,37 * * * *';

/** The subscriptions timer's schedule: SUBSCRIPTION_RENEW_SCHEDULE, as pollSchedule. */
export function subscriptionRenewSchedule(env: NodeJS.ProcessEnv = process.env): string {
  return timerSchedule('SUBSCRIPTION_RENEW_SCHEDULE', env.SUBSCRIPTION_RENEW_SCHEDULE, DEFAULT_SUBSCRIPTION_RENEW_SCHEDULE);
}

function timerSchedule(setting: string, value: string | undefined, fallback: string): string {
  return value?.trim() ? `%${setting}%` : fallback;
}
