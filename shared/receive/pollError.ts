import { isMailError, type ErrorCode } from '../errors.js';
import { redact } from '../redact.js';

/** Why a poll (or one of its messages) stopped, safe to show: redacted, no stack. */
export interface PollError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export function describeFailure(error: unknown): PollError {
  if (isMailError(error)) return { code: error.code, message: redact(error.message), ...(error.hint && { hint: redact(error.hint) }) };
  return { code: 'EPROVIDER', message: redact(error instanceof Error ? error.message : String(error)) };
}
