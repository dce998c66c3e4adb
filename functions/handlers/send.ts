import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { assertJsonContentType, parseJsonObject, readBodyText } from '../../shared/http/jsonBody.js';
import { failureResponse, jsonResponse } from '../../shared/http/problem.js';
import { getRuntime } from '../../shared/runtime.js';
import { acceptSend, idempotencyKeyOf, sendModeOf } from '../../shared/send/acceptSend.js';

export async function send(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    assertJsonContentType(request.headers.get('content-type'));
    const runtime = getRuntime();
    const caller = await authenticateCaller(runtime, request.headers);
    const mode = sendModeOf({ query: request.query.get('mode'), prefer: request.headers.get('prefer'), setting: runtime.settings.sendMode });
    const idempotencyKey = idempotencyKeyOf(request.headers.get('idempotency-key'));
    const body = parseJsonObject(await readBodyText(request, runtime.sendRequestMaxBytes()));
    const answer = await acceptSend(runtime, body, { id: context.invocationId, mode, idempotencyKey, ...(caller && { caller }) });
    const response = jsonResponse(answer.status, answer.body);
    const headers = response.headers as Record<string, string>;
    if (answer.status === 202) headers.Location = answer.location;
    if (answer.replayed) headers['Idempotent-Replayed'] = 'true';
    return response;
  } catch (error) {
    return failureResponse(error, context, { operation: 'send' });
  }
}
