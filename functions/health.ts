import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { healthReport } from '../shared/health/report.js';
import { failureResponse, jsonResponse } from '../shared/http/problem.js';
import { getRuntime } from '../shared/runtime.js';

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, healthReport(getRuntime()));
  } catch (error) {
    return failureResponse(error, context, { operation: 'health' });
  }
}

app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
