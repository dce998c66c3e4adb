import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { assertJsonContentType, parseJsonObject, readBodyText } from '../../shared/http/jsonBody.js';
import { failureResponse } from '../../shared/http/problem.js';
import { NOTIFICATION_DEADLINE_MS, acceptNotifications, validationToken, type NotificationKind } from '../../shared/receive/notifications.js';
import { getRuntime } from '../../shared/runtime.js';

/** Graph batches notifications, each of a few hundred bytes; a body past this is nobody's notification. */
const NOTIFICATION_MAX_BYTES = 1024 * 1024;

export function notifications(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return answer(request, context, 'change');
}

export function lifecycleNotifications(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  return answer(request, context, 'lifecycle');
}

/**
 * Graph's validation request (?validationToken=) is answered with the token as text/plain, before
 * anything else, within Graph's 10 seconds even on a cold start. A notification is checked and its
 * poll enqueued within NOTIFICATION_DEADLINE_MS, then answered 202; storage that does not answer
 * in time is a 503, which Graph retries.
 */
async function answer(request: HttpRequest, context: InvocationContext, kind: NotificationKind): Promise<HttpResponseInit> {
  try {
    const token = validationToken(request.query);
    if (token !== undefined) return { status: 200, headers: { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Cache-Control': 'no-store' }, body: token };
    const runtime = getRuntime();
    const abortSignal = AbortSignal.timeout(NOTIFICATION_DEADLINE_MS);
    assertJsonContentType(request.headers.get('content-type'));
    const body = parseJsonObject(await readBodyText(request, NOTIFICATION_MAX_BYTES));
    await acceptNotifications(runtime, body, { kind, abortSignal });
    return { status: 202 };
  } catch (error) {
    return failureResponse(error, context, { operation: kind === 'change' ? 'notifications' : 'lifecycleNotifications' });
  }
}
