import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isMailError, MailError } from '../shared/errors.js';
import { toProblem } from '../shared/http/problem.js';
import { createLogger, errorDetail, type Logger } from '../shared/log.js';

/** One `m365-mail` subcommand, one file each under cli/commands/. Resolves to the exit code. */
export interface CliCommand {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_BAD_INPUT = 2;

/** Logs go to stderr as structured lines, so stdout carries only the JSON result. */
export const stderrLogger: Logger = createLogger({ log: console.error, warn: console.error, error: console.error });

/**
 * The state (cursors, dedupe, leases, poll status) lives in AzureWebJobsStorage (or the account
 * its identity-based AzureWebJobsStorage__* settings name), as in the app; without either the CLI
 * uses the development storage (Azurite on its default ports, as `npm start` runs it).
 */
export function stateEnv(): NodeJS.ProcessEnv {
  return hasStorageSetting(process.env) ? process.env : { ...process.env, AzureWebJobsStorage: 'UseDevelopmentStorage=true' };
}

/** Whether the settings name a storage account, by connection string or identity-based. */
function hasStorageSetting(env: NodeJS.ProcessEnv): boolean {
  return Object.entries(env).some(([name, value]) => (name === 'AzureWebJobsStorage' || name.startsWith('AzureWebJobsStorage__')) && value?.trim());
}

export function printResult(value: unknown): number {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  return EXIT_OK;
}

/**
 * Prints the same problem JSON the HTTP API answers with, on stderr. Exit 2 for bad input
 * (a 4xx problem), 1 for anything else; an unexpected error's cause is logged (redacted).
 */
export function printFailure(error: unknown, operation: string): number {
  if (!isMailError(error)) stderrLogger.error({ operation, outcome: 'error', error: errorDetail(error) });
  const problem = toProblem(error);
  process.stderr.write(`${JSON.stringify(problem)}\n`);
  return problem.status < 500 ? EXIT_BAD_INPUT : EXIT_FAILURE;
}

/** node:util parseArgs errors (unknown option, missing value) as EINPUT pointing at the command's help. */
function argumentError(error: unknown, command: string): MailError {
  const message = error instanceof Error ? error.message : String(error);
  return new MailError('EINPUT', message, { field: 'arguments', hint: `Run "m365-mail ${command} --help" for the options.` });
}

type FlagOptions = NonNullable<ParseArgsConfig['options']>;

/** The command's flags, strictly parsed (no positionals, no unknown options); a mistake is EINPUT. */
export function parseFlags<O extends FlagOptions>(args: string[], options: O, command: string): ReturnType<typeof parseArgs<{ options: O; strict: true }>>['values'] {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw argumentError(error, command);
  }
}
