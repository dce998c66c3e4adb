import type { HttpResponseInit } from '@azure/functions';
import { z } from 'zod';
import { MailError, isMailError } from '../errors.js';
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

/** Turns a zod failure at the boundary into EINPUT naming the first offending field. */
export function inputError(error: z.ZodError, prefix?: string): MailError {
  const issue = error.issues[0]!;
  const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.') || undefined;
  return new MailError('EINPUT', `${field ?? 'body'}: ${issue.message}`, {
    field,
    hint: field ? `Correct "${field}" and send again.` : 'Send a JSON object as the request body.',
  });
}

export function toProblem(error: unknown): Problem {
  const e = isMailError(error)
    ? error
    : new MailError('EPROVIDER', 'internal error', { hint: 'See the function logs for this invocation.' });
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

export function problemResponse(error: unknown): HttpResponseInit {
  const problem = toProblem(error);
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };
  if (problem.retryAfter !== undefined) headers['Retry-After'] = String(Math.ceil(problem.retryAfter));
  return { status: problem.status, headers, body: JSON.stringify(problem) };
}

export function jsonResponse(status: number, body: unknown): HttpResponseInit {
  return { status, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}
