import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { failureResponse } from '../shared/http/problem.js';

let document: string | undefined;

/**
 * The OpenAPI 3.1 document, built on the first request and kept for the process: the builder and
 * the answer schemas are required only then, so loading this file costs the other functions nothing.
 */
function openApiText(): string {
  if (document === undefined) {
    const { buildOpenApiDocument } = require('../shared/openapi/document.js') as typeof import('../shared/openapi/document.js');
    document = JSON.stringify(buildOpenApiDocument());
  }
  return document;
}

export async function openapi(_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'public, max-age=300', 'X-Content-Type-Options': 'nosniff' }, body: openApiText() };
  } catch (error) {
    return failureResponse(error, context, { operation: 'openapi' });
  }
}

// Anonymous: the document holds the API's shape only, the same for every deployment and public in the repository, and tools (API Management, client generators) import it by URL.
app.http('openapi', { methods: ['GET'], route: 'openapi.json', authLevel: 'anonymous', handler: openapi });
