/** Every minute, at second 0 (NCRONTAB with seconds, as Azure Functions timers use). */
export const DEFAULT_POLL_SCHEDULE = '0 */1 * * * *';

/**
 * The timer's schedule: the app setting's *name* when POLL_SCHEDULE is set, so the host
 * resolves it (and a change needs no redeploy); the default otherwise, because the host
 * refuses to start a timer whose `%SETTING%` does not resolve.
 */
export function pollSchedule(env: NodeJS.ProcessEnv = process.env): string {
  return timerSchedule('POLL_SCHEDULE', DEFAULT_POLL_SCHEDULE, env);
}

/** Every 15 minutes: how often push profiles whose subscription is healthy are polled all the same (a notification lost, or none sent). */
export const DEFAULT_PUSH_FALLBACK_SCHEDULE = '0 */15 * * * *';

/** Every 30 minutes: subscriptions are renewed well before they expire, and a failed one is retried. */
export const DEFAULT_SUBSCRIPTION_RENEW_SCHEDULE = '0 7,37 * * * *';

/** A timer's schedule: `%NAME%` when the app setting is set (the host resolves it), else the default. */
export function timerSchedule(setting: string, fallback: string, env: NodeJS.ProcessEnv = process.env): string {
  return env[setting]?.trim() ? `%${setting}%` : fallback;
}
