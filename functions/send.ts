import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { isMailError } from '../shared/errors.js';
import { assertJsonContentType, parseJsonObject } from '../shared/http/jsonBody.js';
import { jsonResponse, problemResponse } from '../shared/http/problem.js';
import { createLogger } from '../shared/log.js';
import { getRuntime } from '../shared/runtime.js';
import { sendMail } from '../shared/send/sendMail.js';

export async function send(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    assertJsonContentType(request.headers.get('content-type'));
    const body = parseJsonObject(await request.text());
    const outcome = await sendMail(getRuntime(), body, { id: context.invocationId });
    return jsonResponse(200, { id: outcome.id, status: outcome.status, messageId: outcome.messageId });
  } catch (error) {
    // MailErrors are expected outcomes, already logged where they arose; anything else is a bug
    // whose details belong in the (redacted) log, never in the response.
    if (!isMailError(error)) {
      createLogger(context).error({ operation: 'send', id: context.invocationId, outcome: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
    return problemResponse(error);
  }
}

app.http('send', { methods: ['POST'], route: 'send', authLevel: 'function', handler: send });
