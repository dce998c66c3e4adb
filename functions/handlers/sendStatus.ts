import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { failureResponse, jsonResponse } from '../../shared/http/problem.js';
import { getRuntime } from '../../shared/runtime.js';
import { readSendStatus } from '../../shared/send/sendStatus.js';

export async function sendStatus(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const runtime = getRuntime();
    const caller = await authenticateCaller(runtime, request.headers);
    return jsonResponse(200, await readSendStatus(runtime.state.send, request.params.id ?? '', { ...(caller && { caller }) }));
  } catch (error) {
    return failureResponse(error, context, { operation: 'sendStatus' });
  }
}
