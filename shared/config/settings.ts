import { MailError } from '../errors.js';

/**
 * A whole-number app setting, at least `min`: the default when unset or empty, ECONFIG naming
 * the setting otherwise. `Number()` alone would turn "35MB" into NaN, and a limit compared with
 * NaN never applies.
 */
export function wholeNumberSetting(env: NodeJS.ProcessEnv, name: string, options: { default: number; min: number }): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return options.default;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < options.min) {
    throw new MailError('ECONFIG', `${name} must be a whole number of at least ${options.min}, not "${raw}"`, {
      field: name,
      hint: `Fix or remove the app setting ${name} (default ${options.default}).`,
    });
  }
  return value;
}

/** A true/false app setting: the default when unset or empty, ECONFIG for anything else than true or false (any case). */
export function booleanSetting(env: NodeJS.ProcessEnv, name: string, options: { default: boolean }): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return options.default;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new MailError('ECONFIG', `${name} must be true or false, not "${env[name]}"`, { field: name, hint: `Set ${name} to true or false, or remove it (default ${options.default}).` });
}

/** An https URL app setting, undefined when unset or empty; ECONFIG naming it when it is not one. */
export function httpsUrlSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (!URL.canParse(raw) || new URL(raw).protocol !== 'https:') {
    throw new MailError('ECONFIG', `${name} must be an https URL, not "${raw}"`, { field: name, hint: `Set ${name} to an https URL such as the one the Azure portal shows, or remove it.` });
  }
  return raw;
}
