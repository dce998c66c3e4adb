import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MailError } from '../../shared/errors.js';
import { translateGraphError } from '../../shared/transports/graph/graphErrors.js';

const context = { profile: 'support', mailbox: 'support@contoso.com' };

/** The shape the Graph client throws: a GraphError with status, Graph code and the answer's headers. */
function graphError(statusCode: number, code: string | null, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(`message of ${code ?? statusCode}`), { statusCode, code, headers: new Headers(headers) });
}

describe('Graph answers translated into our error codes', () => {
  const table: Array<[number, string | null, string]> = [
    [403, 'ErrorSendAsDenied', 'ESEND_DENIED'],
    [403, 'ErrorAccessDenied', 'EAUTH'],
    [403, 'AccessDenied', 'EAUTH'],
    [403, null, 'EAUTH'],
    [401, 'InvalidAuthenticationToken', 'EAUTH'],
    [404, 'MailboxNotEnabledForRESTAPI', 'EMAILBOX'],
    [404, 'ResourceNotFound', 'EMAILBOX'],
    [404, 'ErrorInvalidUser', 'EMAILBOX'],
    [400, 'ErrorInvalidRecipients', 'EREJECTED'],
    [413, null, 'ETOO_LARGE'],
    [400, 'ErrorMessageSizeExceeded', 'ETOO_LARGE'],
    [429, 'TooManyRequests', 'ETHROTTLED'],
    [503, null, 'EUNAVAILABLE'],
    [504, null, 'EUNAVAILABLE'],
    [500, 'generalException', 'EUNAVAILABLE'],
    [409, 'SomethingNew', 'EPROVIDER'],
  ];
  for (const [status, code, expected] of table) {
    it(`${status} ${code ?? '(no code)'} becomes ${expected} with a hint and the provider code`, () => {
      const error = translateGraphError(graphError(status, code), context);
      assert.equal(error.code, expected);
      assert.ok(error.hint && error.hint.length > 20);
      assert.equal(error.providerCode, code ?? undefined);
      assert.match(error.message, /^profile "support": Graph answered/);
    });
  }

  it('passes Retry-After on, in seconds or as an HTTP date', () => {
    assert.equal(translateGraphError(graphError(429, 'TooManyRequests', { 'Retry-After': '7' }), context).retryAfter, 7);
    const date = new Date(Date.now() + 20_000).toUTCString();
    const fromDate = translateGraphError(graphError(503, null, { 'Retry-After': date }), context).retryAfter!;
    assert.ok(fromDate >= 18 && fromDate <= 21, String(fromDate));
  });

  it('an upload-session answer (a bare Graph error body) is translated by its code', () => {
    assert.equal(translateGraphError({ error: { code: 'ErrorAccessDenied', message: 'Access is denied.' } }, context).code, 'EAUTH');
  });

  it('no answer at all (refused connection, TLS) is ECONNECTION naming the endpoint setting', () => {
    const error = translateGraphError(Object.assign(new Error('fetch failed'), { statusCode: -1, code: 'TypeError' }), context);
    assert.equal(error.code, 'ECONNECTION');
    assert.match(error.hint ?? '', /endpoints\.graph/);
  });

  it('a MailError (a token failure) passes through unchanged', () => {
    const original = new MailError('ETOKEN', 'token request failed');
    assert.equal(translateGraphError(original, context), original);
  });
});
