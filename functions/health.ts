import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { healthReport } from '../shared/health/report.js';
import { unhealthyResponse } from '../shared/health/unhealthy.js';
import { jsonResponse } from '../shared/http/problem.js';
import { getRuntime } from '../shared/runtime.js';

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, await healthReport(getRuntime()));
  } catch (error) {
    return unhealthyResponse(error, context);
  }
}

// Anonymous: App Service Health check and load balancer probes call it without a key.
app.http('health', { methods: ['GET'], route: 'health', authLevel: 'anonymous', handler: health });
