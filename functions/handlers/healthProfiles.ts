import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { profilesHealth } from '../../shared/health/report.js';
import { failureResponse, jsonResponse } from '../../shared/http/problem.js';
import { getRuntime } from '../../shared/runtime.js';

export async function healthProfiles(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const runtime = getRuntime();
    await authenticateCaller(runtime, request.headers, { admin: true });
    return jsonResponse(200, await profilesHealth(runtime));
  } catch (error) {
    return failureResponse(error, context, { operation: 'healthProfiles' });
  }
}
