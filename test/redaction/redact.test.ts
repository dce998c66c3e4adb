import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MailError } from '../../shared/errors.js';
import { problemResponse } from '../../shared/http/problem.js';
import { createLogger } from '../../shared/log.js';
import { MAX_SENSITIVE_VALUES, REDACTED, redact, redactValue, registerSensitive } from '../../shared/redact.js';

describe('redact removes registered secrets and tokens from any text', () => {
  it('a registered value is replaced wherever it appears', () => {
    const secret = `s3cr3t-${randomBytes(8).toString('hex')}`;
    registerSensitive(secret);
    assert.equal(redact(`before ${secret} middle ${secret}after`), `before ${REDACTED} middle ${REDACTED}after`);
  });

  it('a token inside a base64 XOAUTH2 string is removed at every byte alignment', () => {
    const token = `tok-${randomBytes(24).toString('base64url')}`;
    registerSensitive(token);
    // user names of three lengths put the token at offsets 0, 1 and 2 modulo 3.
    for (const user of ['a@b.cd', 'ab@b.cd', 'abc@b.cd']) {
      const sasl = Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
      const out = redact(`AUTH XOAUTH2 ${sasl}`);
      assert.ok(out.includes(REDACTED), `not redacted for ${user}: ${out}`);
      // What is left of the SASL string cannot give the token back.
      const leftover = out.replace('AUTH XOAUTH2 ', '').split(REDACTED).join('');
      assert.ok(leftover.length <= 48, `too much left for ${user}: ${out}`);
    }
  });

  it('values shorter than six characters are not registered (they would redact ordinary words)', () => {
    registerSensitive('mail');
    assert.equal(redact('send mail now'), 'send mail now');
  });

  it('bearer headers, JWTs and secret form parameters are removed even when never registered', () => {
    const text = 'Authorization: Bearer abc.DEF-ghi_123= body client_secret=xyz&scope=a refresh_token=r1 eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl';
    const out = redact(text);
    assert.doesNotMatch(out, /abc\.DEF|xyz|r1\b|eyJhbGciOi/);
    assert.match(out, /scope=a/);
  });

  it('redactValue and the logger redact every string leaf, nested', () => {
    const token = `tok-${randomBytes(16).toString('hex')}`;
    registerSensitive(token);
    assert.deepEqual(redactValue({ a: [`x ${token}`, 3], b: { c: token }, d: null }), { a: [`x ${REDACTED}`, 3], b: { c: REDACTED }, d: null });

    const lines: string[] = [];
    createLogger({ log: (l: unknown) => lines.push(String(l)), warn: () => {}, error: () => {} }).info({ operation: 'send', detail: { error: `refused ${token}` } });
    assert.equal(lines.length, 1);
    assert.ok(!lines[0]!.includes(token));
    assert.deepEqual(JSON.parse(lines[0]!), { operation: 'send', detail: { error: `refused ${REDACTED}` } });
  });

  it('a problem body takes registered values out of an error text and hint that carry them', () => {
    const token = `tok-${randomBytes(16).toString('hex')}`;
    registerSensitive(token);
    const error = new MailError('EAUTH', `535 5.7.3 refused token ${token}`, { hint: `Token ${token} was refused.` });
    const body = String(problemResponse(error).body);
    assert.ok(!body.includes(token), body);
    const problem = JSON.parse(body) as { detail: string; hint: string };
    assert.equal(problem.detail, `535 5.7.3 refused token ${REDACTED}`);
    assert.equal(problem.hint, `Token ${REDACTED} was refused.`);
  });

  it('an access token is forgotten an hour after it expires, while a secret registered before it is kept', () => {
    const secret = `secret-${randomBytes(8).toString('hex')}`;
    const stale = `tok-${randomBytes(16).toString('hex')}`;
    const current = `tok-${randomBytes(16).toString('hex')}`;
    registerSensitive(secret);
    registerSensitive(stale, { expiresAt: Date.now() - 61 * 60 * 1000 });
    registerSensitive(current, { expiresAt: Date.now() + 60 * 60 * 1000 });
    assert.equal(redact(`${secret} ${current}`), `${REDACTED} ${REDACTED}`);
    assert.equal(redact(stale), stale);
  });

  it('an expired token is still redacted within the hour after its expiry', () => {
    const token = `tok-${randomBytes(16).toString('hex')}`;
    registerSensitive(token, { expiresAt: Date.now() - 59 * 60 * 1000 });
    registerSensitive(`other-${randomBytes(8).toString('hex')}`);
    assert.equal(redact(token), REDACTED);
  });

  it(`past ${MAX_SENSITIVE_VALUES} values the oldest expiring one goes, a re-registered one stays, and a secret is never dropped, however many tokens come after it`, () => {
    const secret = `vault-secret-${randomBytes(8).toString('hex')}`;
    const inAnHour = Date.now() + 3600_000;
    const first = `first-token-${randomBytes(8).toString('hex')}`;
    const refreshed = `refreshed-token-${randomBytes(8).toString('hex')}`;
    registerSensitive(secret);
    registerSensitive(first, { expiresAt: inAnHour });
    registerSensitive(refreshed, { expiresAt: inAnHour });
    const flood = Array.from({ length: 2 * MAX_SENSITIVE_VALUES }, (_, i) => `presented-${i}-${randomBytes(8).toString('hex')}`);
    flood.forEach((value, i) => {
      registerSensitive(value, { expiresAt: inAnHour });
      if (i % 100 === 0) registerSensitive(refreshed, { expiresAt: inAnHour });
    });
    assert.equal(redact(secret), REDACTED, 'the secret stays on the list');
    assert.equal(redact(first), first, 'the oldest expiring value went');
    assert.equal(redact(refreshed), REDACTED);
    assert.equal(redact(flood.at(-1)!), REDACTED);
  });

  it('a registered value is also removed percent-encoded (either hex case, and form-encoded) and as hex', () => {
    const secret = `s3cr+t/${randomBytes(6).toString('base64')}=x y`;
    registerSensitive(secret);
    const percent = encodeURIComponent(secret);
    for (const form of [percent, percent.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), new URLSearchParams({ v: secret }).toString().slice(2), Buffer.from(secret).toString('hex'), Buffer.from(secret).toString('hex').toUpperCase()]) {
      assert.equal(redact(`before ${form} after`), `before ${REDACTED} after`, form);
    }
  });

  it('the app settings that are secrets are registered when the runtime starts: the storage account key, OAUTH_STATE_KEY, AZURE_CLIENT_SECRET', async () => {
    const { MailRuntime } = await import('../../shared/runtime.js');
    const { silentLogger } = await import('../../shared/log.js');
    const accountKey = randomBytes(32).toString('base64');
    const stateKey = `state-key-${randomBytes(16).toString('hex')}`;
    const clientSecret = `azure-client-secret-${randomBytes(8).toString('hex')}`;
    const text = `key ${accountKey} state ${stateKey} client ${clientSecret}`;
    assert.equal(redact(text), text, 'nothing registered them before');
    new MailRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail', AzureWebJobsStorage: `DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey=${accountKey};EndpointSuffix=core.windows.net`, OAUTH_STATE_KEY: stateKey, AZURE_CLIENT_SECRET: clientSecret }, logger: silentLogger });
    assert.equal(redact(text), `key ${REDACTED} state ${REDACTED} client ${REDACTED}`);
  });
});
