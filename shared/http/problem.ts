import type { HttpResponseInit } from '@azure/functions';
import { asMailError, isMailError } from '../errors.js';
import { createLogger, errorDetail, type LogSink } from '../log.js';
import { redact } from '../redact.js';

/** RFC 9457 problem details, plus our stable `code`, the offending `field` and a `hint`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  field?: string;
  hint?: string;
  profile?: string;
  retryAfter?: number;
}

export function toProblem(error: unknown): Problem {
  const e = asMailError(error);
  return {
    type: `urn:m365-mail:error:${e.code}`,
    title: e.title,
    status: e.status,
    detail: redact(e.message),
    code: e.code,
    ...(e.field ? { field: e.field } : {}),
    ...(e.hint ? { hint: redact(e.hint) } : {}),
    ...(e.profile ? { profile: e.profile } : {}),
    ...(e.retryAfter !== undefined ? { retryAfter: e.retryAfter } : {}),
  };
}

/** `status` overrides the code's own, e.g. 404 where the unknown profile is part of the path. */
export function problemResponse(error: unknown, options: { status?: number } = {}): HttpResponseInit {
  const problem = { ...toProblem(error), ...(options.status !== undefined && { status: options.status }) };
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };
  if (problem.retryAfter !== undefined) headers['Retry-After'] = String(Math.ceil(problem.retryAfter));
  if (isMailError(error) && error.challenge !== undefined) headers['WWW-Authenticate'] = error.challenge;
  return { status: problem.status, headers, body: JSON.stringify(problem) };
}

export function jsonResponse(status: number, body: unknown): HttpResponseInit {
  return { status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

/** The subset of InvocationContext a failed invocation is logged to. */
export interface InvocationLog extends LogSink {
  invocationId: string;
}

/**
 * The answer to a failed HTTP invocation. A MailError is an expected outcome, logged where it
 * arose; anything else is a bug, whose details go to the (redacted) log with the invocation id
 * and never into the response. With `profileInPath` an unknown profile is a missing resource: 404.
 */
export function failureResponse(error: unknown, context: InvocationLog, options: { operation: string; profileInPath?: boolean }): HttpResponseInit {
  if (!isMailError(error)) createLogger(context).error({ operation: options.operation, id: context.invocationId, outcome: 'error', error: errorDetail(error) });
  const missing = options.profileInPath === true && isMailError(error) && error.code === 'EPROFILE_UNKNOWN';
  return problemResponse(error, missing ? { status: 404 } : {});
}
