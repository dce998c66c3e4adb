import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { startConsent } from '../shared/consent/consentFlow.js';
import { isMailError } from '../shared/errors.js';
import { problemResponse, toProblem } from '../shared/http/problem.js';
import { createLogger } from '../shared/log.js';
import { getRuntime } from '../shared/runtime.js';

export async function connect(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const start = await startConsent(getRuntime(), request.params.profile ?? '', { requestUrl: request.url });
    return { status: 302, headers: { Location: start.location, 'Cache-Control': 'no-store' }, cookies: [start.cookie] };
  } catch (error) {
    // The profile is part of the path: an unknown one is a missing resource.
    if (isMailError(error) && error.code === 'EPROFILE_UNKNOWN') {
      return { status: 404, headers: { 'Content-Type': 'application/problem+json' }, body: JSON.stringify({ ...toProblem(error), status: 404 }) };
    }
    if (!isMailError(error)) createLogger(context).error({ operation: 'connect', id: context.invocationId, outcome: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    return problemResponse(error);
  }
}

app.http('connect', { methods: ['GET'], route: 'connect/{profile}', authLevel: 'function', handler: connect });
