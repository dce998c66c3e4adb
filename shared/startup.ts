import { asMailError } from './errors.js';
import { createLogger, errorDetail, type Logger } from './log.js';
import { getRuntime } from './runtime.js';

export interface StartupCheck {
  ok: boolean;
  profiles?: number;
  source?: string;
  code?: string;
}

/**
 * Validates the profiles and settings when the app starts, so a mistake shows in the start-up
 * log naming the profile and field, not first in an operator's failed request. It logs and
 * returns rather than throwing: the host keeps running, /api/health answers 503 ECONFIG and
 * every request gets the same problem, which is easier to find than a worker that never starts.
 */
export function checkConfiguration(logger: Logger = createLogger()): StartupCheck {
  try {
    const runtime = getRuntime();
    const profiles = runtime.profiles.profiles.size;
    logger.info({ operation: 'startup', outcome: 'ok', profiles, source: runtime.profiles.source, callers: runtime.profiles.callers.size });
    if (runtime.profiles.callers.size === 0 && profiles > 1) {
      logger.warn({
        operation: 'startup',
        outcome: 'ok',
        code: 'ENO_CALLERS',
        hint: `${profiles} profiles and no callers: whoever holds a function key may send as every one of these mailboxes. Name the apps that call this one, and the profiles each may use, under "callers" in the profiles document (docs/security.md).`,
      });
    }
    return { ok: true, profiles, source: runtime.profiles.source };
  } catch (error) {
    const e = asMailError(error);
    logger.error({ operation: 'startup', outcome: 'error', code: e.code, profile: e.profile, field: e.field, error: e.code === 'EINTERNAL' ? errorDetail(error) : e.message, hint: e.hint });
    return { ok: false, code: e.code };
  }
}
