import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { authenticateCaller } from '../../shared/callers/authorize.js';
import { startConsent } from '../../shared/consent/consentFlow.js';
import { failureResponse } from '../../shared/http/problem.js';
import { getRuntime } from '../../shared/runtime.js';

export async function connect(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const runtime = getRuntime();
    await authenticateCaller(runtime, request.headers, { admin: true });
    const start = await startConsent(runtime, request.params.profile ?? '', { requestUrl: request.url });
    return { status: 302, headers: { Location: start.location, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'" }, cookies: [start.cookie] };
  } catch (error) {
    return failureResponse(error, context, { operation: 'connect', profileInPath: true });
  }
}
