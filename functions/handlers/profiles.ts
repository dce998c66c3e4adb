import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { failureResponse, jsonResponse } from '../../shared/http/problem.js';
import { describeProfiles } from '../../shared/profiles/describe.js';
import { getRuntime } from '../../shared/runtime.js';

export async function profiles(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const runtime = getRuntime();
    await authenticateCaller(runtime, request.headers, { admin: true });
    return jsonResponse(200, describeProfiles(runtime.profiles));
  } catch (error) {
    return failureResponse(error, context, { operation: 'profiles' });
  }
}
