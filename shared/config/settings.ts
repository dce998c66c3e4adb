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
