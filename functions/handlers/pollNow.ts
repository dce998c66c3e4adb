import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { MailError } from '../../shared/errors.js';
import { failureResponse, jsonResponse, toProblem } from '../../shared/http/problem.js';
import { pollAndRecord } from '../../shared/receive/pollRequests.js';
import { getRuntime } from '../../shared/runtime.js';

export async function pollNow(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const runtime = getRuntime();
    await authenticateCaller(runtime, request.headers, { admin: true });
    const result = await pollAndRecord(runtime, request.params.name ?? '');
    if (result.status !== 'failed' || !result.error) return jsonResponse(200, result);
    const { code, message, hint } = result.error;
    const problem = toProblem(new MailError(code, message, { profile: result.profile, ...(hint && { hint }) }));
    return { status: problem.status, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ ...problem, poll: result }) };
  } catch (error) {
    return failureResponse(error, context, { operation: 'pollNow', profileInPath: true });
  }
}
