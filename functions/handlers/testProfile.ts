import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { DIAGNOSIS_REQUEST_MAX_BYTES, DIAGNOSIS_TIMEOUT_MS, diagnoseProfile, diagnoseRequestSchema } from '../../shared/diagnose/diagnoseProfile.js';
import { assertJsonContentType, parseJsonObject, readBodyText } from '../../shared/http/jsonBody.js';
import { inputError, isMailError } from '../../shared/errors.js';
import { failureResponse, jsonResponse } from '../../shared/http/problem.js';
import { getRuntime, type MailRuntime } from '../../shared/runtime.js';

/**
 * Answers 200 with the report whether the profile passed or not (`ok` and the failed step
 * say which): the diagnosis itself succeeded, and a UI reads one shape. A 502 would tell
 * generic clients and proxies that this API is broken when the mailbox setup is.
 */
export async function testProfile(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    // An invalid profiles document names no callers: the diagnosis then reports it (its config step), as before callers existed.
    const runtime = runtimeIfValid();
    if (runtime) await authenticateCaller(runtime, request.headers, { admin: true });
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

function runtimeIfValid(): MailRuntime | undefined {
  try {
    return getRuntime();
  } catch (error) {
    if (isMailError(error) && error.code === 'ECONFIG') return undefined;
    throw error;
  }
}
