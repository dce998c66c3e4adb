/** Every minute, at second 0 (NCRONTAB with seconds, as Azure Functions timers use). */
export const DEFAULT_POLL_SCHEDULE = '0 */1 * * * *';

/**
 * The timer's schedule: the app setting's *name* when POLL_SCHEDULE is set, so the host
 * resolves it (and a change needs no redeploy); the default otherwise, because the host
 * refuses to start a timer whose `%SETTING%` does not resolve.
 */
export function pollSchedule(env: NodeJS.ProcessEnv = process.env): string {
  return env.POLL_SCHEDULE?.trim() ? '%POLL_SCHEDULE%' : DEFAULT_POLL_SCHEDULE;
}
