import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { CONSENT_COOKIE, completeConsent } from '../../shared/consent/consentFlow.js';
import { isMailError } from '../../shared/errors.js';
import { toProblem } from '../../shared/http/problem.js';
import { createLogger, errorDetail } from '../../shared/log.js';
import { getRuntime } from '../../shared/runtime.js';

/**
 * A person reads this in the browser. The URL it answers carries the code: nothing may be
 * cached or sent on as a referrer. The consent cookie (set for this path) is cleared either way.
 */
function page(request: HttpRequest, status: number, lines: string[]): HttpResponseInit {
  return {
    status,
    headers: {
      'Content-Type': 'text/plain; charset=utf-8',
      'Cache-Control': 'no-store',
      'Referrer-Policy': 'no-referrer',
      // Text that quotes what the authority answered: never sniffed into HTML, never framed, nothing loaded.
      'X-Content-Type-Options': 'nosniff',
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
    },
    cookies: [{ name: CONSENT_COOKIE, value: '', path: new URL(request.url).pathname, httpOnly: true, secure: true, sameSite: 'Lax', maxAge: 0 }],
    body: `${lines.join('\n')}\n`,
  };
}

export async function oauthCallback(request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> {
  const logger = createLogger(context);
  try {
    const result = await completeConsent(getRuntime(), { requestUrl: request.url, cookieHeader: request.headers.get('cookie') });
    logger.info({ operation: 'consent', profile: result.profile, id: context.invocationId, outcome: 'ok', persisted: result.persisted });
    return page(request, 200, [
      `Connected: profile "${result.profile}" (mailbox ${result.mailbox}) now acts as ${result.account}.`,
      result.persisted
        ? `The refresh token is stored in Key Vault as "${result.secretName}".`
        : `Warning: the refresh token is kept in this process's memory only and is lost when it restarts. Set KEY_VAULT_URL to keep "${result.secretName}" in Key Vault.`,
      'You can close this window.',
    ]);
  } catch (error) {
    if (isMailError(error)) logger.warn({ operation: 'consent', profile: error.profile, id: context.invocationId, outcome: 'error', code: error.code });
    else logger.error({ operation: 'consent', id: context.invocationId, outcome: 'error', error: errorDetail(error) });
    const problem = toProblem(error);
    return page(request, problem.status, [`Not connected: ${problem.detail}`, ...(problem.hint ? [problem.hint] : [])]);
  }
}
