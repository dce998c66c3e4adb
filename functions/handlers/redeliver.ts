import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { assertJsonContentType, parseJsonObject, readBodyText } from '../../shared/http/jsonBody.js';
import { failureResponse, jsonResponse } from '../../shared/http/problem.js';
import { redeliver as redeliverMessages } from '../../shared/receive/redeliver.js';
import { getRuntime } from '../../shared/runtime.js';

/** The body is ids and two dates: 1,000 ids of 1 KiB at most. */
const REDELIVER_REQUEST_MAX_BYTES = 1024 * 1024 + 4096;

export async function redeliver(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    assertJsonContentType(request.headers.get('content-type'));
    const runtime = getRuntime();
    await authenticateCaller(runtime, request.headers, { admin: true });
    const body = parseJsonObject(await readBodyText(request, REDELIVER_REQUEST_MAX_BYTES));
    return jsonResponse(200, await redeliverMessages(runtime, request.params.name ?? '', body, { abortSignal: AbortSignal.timeout(runtime.settings.pollMaxDurationSeconds * 1000) }));
  } catch (error) {
    return failureResponse(error, context, { operation: 'redeliver', profileInPath: true });
  }
}
