import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { MailError } from '../shared/errors.js';
import { jsonResponse, problemResponse } from '../shared/http/problem.js';
import { getRuntime } from '../shared/runtime.js';
import { sendMail } from '../shared/send/sendMail.js';

export async function send(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  try {
    const body = await readJson(request);
    const outcome = await sendMail(getRuntime(), body, { id: context.invocationId });
    return jsonResponse(200, { id: outcome.id, status: outcome.status, messageId: outcome.messageId });
  } catch (error) {
    if (!(error instanceof MailError)) context.error(JSON.stringify({ operation: 'send', outcome: 'error', id: context.invocationId, error: String(error) }));
    return problemResponse(error);
  }
}

async function readJson(request: HttpRequest): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (type && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new MailError('EINPUT', `unsupported content type ${type}`, { field: 'content-type', hint: 'Send the message as application/json.' });
  }
  const text = await request.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new MailError('EINPUT', 'the body is not valid JSON', { hint: 'Send a JSON object as the request body.' });
  }
}

app.http('send', { methods: ['POST'], route: 'send', authLevel: 'function', handler: send });
