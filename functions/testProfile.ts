import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { DIAGNOSIS_REQUEST_MAX_BYTES, DIAGNOSIS_TIMEOUT_MS, diagnoseProfile, diagnoseRequestSchema } from '../shared/diagnose/diagnoseProfile.js';
import { assertJsonContentType, parseJsonObject, readBodyText } from '../shared/http/jsonBody.js';
import { inputError } from '../shared/errors.js';
import { failureResponse, jsonResponse } from '../shared/http/problem.js';
import { getRuntime } from '../shared/runtime.js';

/**
 * Answers 200 with the report whether the profile passed or not (`ok` and the failed step
 * say which): the diagnosis itself succeeded, and a UI reads one shape. A 502 would tell
 * generic clients and proxies that this API is broken when the mailbox setup is.
 */
export async function testProfile(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    assertJsonContentType(request.headers.get('content-type'));
    const text = await readBodyText(request, DIAGNOSIS_REQUEST_MAX_BYTES);
    const parsed = diagnoseRequestSchema.safeParse(text.trim() === '' ? {} : parseJsonObject(text));
    if (!parsed.success) throw inputError(parsed.error);
    const { sendTo } = parsed.data;
    const report = await diagnoseProfile(getRuntime, request.params.name ?? '', {
      abortSignal: AbortSignal.timeout(DIAGNOSIS_TIMEOUT_MS),
      ...(sendTo !== undefined && { send: { to: sendTo } }),
    });
    return jsonResponse(200, report);
  } catch (error) {
    return failureResponse(error, context, { operation: 'testProfile', profileInPath: true });
  }
}

app.http('testProfile', { methods: ['POST'], route: 'profiles/{name}/test', authLevel: 'function', handler: testProfile });
