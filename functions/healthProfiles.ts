import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { profilesHealth } from '../shared/health/report.js';
import { failureResponse, jsonResponse } from '../shared/http/problem.js';
import { getRuntime } from '../shared/runtime.js';

export async function healthProfiles(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, await profilesHealth(getRuntime()));
  } catch (error) {
    return failureResponse(error, context, { operation: 'healthProfiles' });
  }
}

app.http('healthProfiles', { methods: ['GET'], route: 'health/profiles', authLevel: 'function', handler: healthProfiles });
