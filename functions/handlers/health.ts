import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { healthReport } from '../../shared/health/report.js';
import { unhealthyResponse } from '../../shared/health/unhealthy.js';
import { jsonResponse } from '../../shared/http/problem.js';
import { getRuntime } from '../../shared/runtime.js';

export async function health(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, await healthReport(getRuntime()));
  } catch (error) {
    return unhealthyResponse(error, context);
  }
}
