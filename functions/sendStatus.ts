import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { isMailError } from '../shared/errors.js';
import { jsonResponse, problemResponse } from '../shared/http/problem.js';
import { createLogger } from '../shared/log.js';
import { getRuntime } from '../shared/runtime.js';
import { readSendStatus } from '../shared/send/sendStatus.js';
import { sendState } from '../shared/state/sendState.js';

export async function sendStatus(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    return jsonResponse(200, await readSendStatus(sendState(getRuntime().env), request.params.id ?? ''));
  } catch (error) {
    if (!isMailError(error)) {
      createLogger(context).error({ operation: 'sendStatus', id: context.invocationId, outcome: 'error', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    }
    return problemResponse(error);
  }
}

app.http('sendStatus', { methods: ['GET'], route: 'send/{id}', authLevel: 'function', handler: sendStatus });
