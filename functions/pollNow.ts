import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { MailError, isMailError } from '../shared/errors.js';
import { jsonResponse, problemResponse, toProblem } from '../shared/http/problem.js';
import { pollMailbox } from '../shared/receive/pollMailbox.js';
import { pollDeadline } from '../shared/receive/pollRequests.js';
import { getRuntime } from '../shared/runtime.js';

export async function pollNow(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const runtime = getRuntime();
  try {
    const result = await pollMailbox(runtime, request.params.name ?? '', { abortSignal: pollDeadline(runtime.env) });
    if (result.status !== 'failed' || !result.error) return jsonResponse(200, result);
    const { code, message, hint } = result.error;
    const problem = toProblem(new MailError(code, message, { profile: result.profile, ...(hint && { hint }) }));
    return { status: problem.status, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ ...problem, poll: result }) };
  } catch (error) {
    // The profile is part of the path: an unknown one is a missing resource.
    if (isMailError(error) && error.code === 'EPROFILE_UNKNOWN') {
      return { status: 404, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ ...toProblem(error), status: 404 }) };
    }
    if (!isMailError(error)) context.error(JSON.stringify({ operation: 'pollNow', outcome: 'error', id: context.invocationId, error: String(error) }));
    return problemResponse(error);
  }
}

app.http('pollNow', { methods: ['POST'], route: 'profiles/{name}/poll', authLevel: 'function', handler: pollNow });
