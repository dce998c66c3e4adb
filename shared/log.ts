import { redactValue } from './redact.js';

/** One structured object per event: profile, operation, id, outcome, durationMs. Never a secret or a body. */
export interface LogEvent {
  operation: string;
  profile?: string;
  id?: string;
  outcome?: 'ok' | 'error' | 'retry' | 'skipped';
  durationMs?: number;
  code?: string;
  [key: string]: unknown;
}

export interface Logger {
  info(event: LogEvent): void;
  warn(event: LogEvent): void;
  error(event: LogEvent): void;
}

/** The subset of InvocationContext (or console) a logger writes to. */
export interface LogSink {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export function createLogger(sink: LogSink = console): Logger {
  const write = (level: 'log' | 'warn' | 'error') => (event: LogEvent) => sink[level](JSON.stringify(redactValue(event)));
  return { info: write('log'), warn: write('warn'), error: write('error') };
}

export const silentLogger: Logger = { info: () => {}, warn: () => {}, error: () => {} };

/** What the log keeps of an unexpected error: its stack (the message included), redacted like every log field. */
export function errorDetail(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
