import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { MailError } from '../../shared/errors.js';
import { sendModeOf } from '../../shared/send/acceptSend.js';
import { HOST_MAX_DEQUEUE_COUNT, SENDING_HOLD_SECONDS } from '../../shared/send/queuedSend.js';
import { isTransient, retryDelaySeconds } from '../../shared/send/retryPolicy.js';
import { parseSettings } from '../../shared/config/settings.js';

const maxSendAttempts = (env: NodeJS.ProcessEnv) => parseSettings(env).sendMaxAttempts;
const sendModeSetting = (env: NodeJS.ProcessEnv) => parseSettings(env).sendMode;
import { mailErrorOf } from '../support/mailError.js';

describe('retry policy of queued sends', () => {
  it('backs off exponentially with jitter from 30 s, capped at an hour, and never waits less than Retry-After', () => {
    const low = () => 0;
    const high = () => 0.999999;
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelaySeconds(n, undefined, low)), [15, 30, 60, 120]);
    assert.deepEqual([1, 2, 3, 4].map((n) => retryDelaySeconds(n, undefined, high)), [30, 60, 120, 240]);
    assert.equal(retryDelaySeconds(30, undefined, high), 3600);
    assert.equal(retryDelaySeconds(1, 300, high), 300);
    assert.equal(retryDelaySeconds(4, 10, low), 120);
    // SEND_RETRY_BASE_SECONDS: the same doubling from another first wait.
    assert.deepEqual([1, 2, 3].map((n) => retryDelaySeconds(n, undefined, high, 2)), [2, 4, 8]);
    assert.equal(retryDelaySeconds(1, 5, low, 2), 5);
  });

  const transient: Array<[string, MailError, boolean]> = [
    ['throttling', new MailError('ETHROTTLED', 'x', { retryAfter: 60 }), true],
    ['an unavailable provider', new MailError('EUNAVAILABLE', 'x'), true],
    ['a failed connection', new MailError('ECONNECTION', 'x'), true],
    ['a token request that got no answer', new MailError('ETOKEN', 'x'), true],
    ['a vault that did not answer', new MailError('ESECRET_ACCESS', 'x', { cause: { statusCode: 503 } }), true],
    ['a token Entra refused (AADSTS code)', new MailError('ETOKEN', 'x', { providerCode: 'AADSTS7000215' }), false],
    ['a vault that refused access', new MailError('ESECRET_ACCESS', 'x', { cause: { statusCode: 403 } }), false],
    ['a refused token after the renewal', new MailError('EAUTH', 'x'), false],
    ['Send As denied', new MailError('ESEND_DENIED', 'x'), false],
    ['a rejected message', new MailError('EREJECTED', 'x'), false],
    ['a message too large', new MailError('ETOO_LARGE', 'x'), false],
    ['a missing mailbox', new MailError('EMAILBOX', 'x'), false],
  ];
  for (const [name, error, expected] of transient) {
    it(`${expected ? 'retries' : 'fails at once on'} ${name} (${error.code})`, () => assert.equal(isTransient(error), expected));
  }

  it('reads SEND_MAX_ATTEMPTS (default 5) and names the setting when it is not a whole number of at least 1', () => {
    assert.equal(maxSendAttempts({}), 5);
    assert.equal(maxSendAttempts({ SEND_MAX_ATTEMPTS: '' }), 5);
    assert.equal(maxSendAttempts({ SEND_MAX_ATTEMPTS: '8' }), 8);
    for (const bad of ['0', '2.5', 'many']) {
      const error = mailErrorOf(() => maxSendAttempts({ SEND_MAX_ATTEMPTS: bad }));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, 'SEND_MAX_ATTEMPTS');
    }
  });

  it('chooses the mode by ?mode=, then Prefer: respond-async, then SEND_MODE (default sync)', () => {
    assert.equal(sendModeOf({ query: null, prefer: null, setting: sendModeSetting({}) }), 'sync');
    assert.equal(sendModeOf({ query: null, prefer: 'respond-async', setting: sendModeSetting({}) }), 'queued');
    assert.equal(sendModeOf({ query: null, prefer: 'return=minimal; foo="bar", Respond-Async', setting: sendModeSetting({}) }), 'queued');
    assert.equal(sendModeOf({ query: null, prefer: 'wait=10', setting: sendModeSetting({}) }), 'sync');
    assert.equal(sendModeOf({ query: null, prefer: null, setting: sendModeSetting({ SEND_MODE: 'queued' }) }), 'queued');
    assert.equal(sendModeOf({ query: 'sync', prefer: 'respond-async', setting: sendModeSetting({ SEND_MODE: 'queued' }) }), 'sync');
    assert.equal(mailErrorOf(() => sendModeOf({ query: null, prefer: null, setting: sendModeSetting({ SEND_MODE: 'later' }) })).code, 'ECONFIG');
  });

  it('matches host.json: the host gives up after HOST_MAX_DEQUEUE_COUNT deliveries, and ends an invocation within the sending hold', () => {
    const host = JSON.parse(readFileSync(path.join(APP_ROOT, 'host.json'), 'utf8')) as { functionTimeout: string; extensions: { queues: { maxDequeueCount: number; messageEncoding: string } } };
    assert.equal(host.extensions.queues.maxDequeueCount, HOST_MAX_DEQUEUE_COUNT);
    assert.equal(host.extensions.queues.messageEncoding, 'base64');
    const [hours, minutes, seconds] = host.functionTimeout.split(':').map(Number) as [number, number, number];
    assert.ok(hours * 3600 + minutes * 60 + seconds <= SENDING_HOLD_SECONDS);
  });
});
