import type { HttpResponseInit } from '@azure/functions';
import { MailError, isMailError } from '../errors.js';
import { failureResponse, problemResponse, type InvocationLog } from '../http/problem.js';
import { createLogger } from '../log.js';

/**
 * The anonymous health answer when the app cannot do its work: invalid profiles or settings
 * (ECONFIG), state storage not answering (ESTATE). 503, the status App Service Health check and
 * load balancers read as "take this instance out". The body has the code and title only: the
 * error's own text may name a profile, a field or a mailbox, which anonymous callers must not
 * learn; it goes to the log, and GET /api/health/profiles (function key) answers it whole.
 */
export function unhealthyResponse(error: unknown, context: InvocationLog): HttpResponseInit {
  if (!isMailError(error)) return failureResponse(error, context, { operation: 'health' });
  createLogger(context).error({
    operation: 'health',
    id: context.invocationId,
    outcome: 'error',
    code: error.code,
    error: error.message,
    ...(error.profile !== undefined && { profile: error.profile }),
    ...(error.field !== undefined && { field: error.field }),
  });
  const generic = new MailError(error.code, error.title, { hint: 'The log of this request, or GET /api/health/profiles with a function key, says what is wrong.' });
  return problemResponse(generic, { status: 503 });
}
