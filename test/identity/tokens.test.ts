import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exchangeScope, graphScope } from '../../shared/config/cloud.js';
import type { Profile } from '../../shared/config/profiles.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailError } from '../../shared/errors.js';
import { isTransient } from '../../shared/send/retryPolicy.js';
import { MailRuntime } from '../../shared/runtime.js';
import { silentLogger } from '../../shared/log.js';
import { ProfileTokenProvider } from '../../shared/identity/tokenProvider.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore, type SecretStore } from '../../shared/secrets/store.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';

const OUTLOOK = 'https://outlook.office365.com/.default';

describe('access tokens from the real @azure/identity against a loopback Entra endpoint', () => {
  const entra = new TokenEndpointPeer();
  before(() => entra.start());
  after(() => entra.stop());

  /** A clientSecret profile whose app is registered on the peer with `secret`. */
  function profile(clientId: string, secret: string): Profile {
    entra.register({ tenantId: 'contoso-tenant', clientId, secret });
    return parseProfiles({ profiles: { support: {
      mailbox: 'support@contoso.com', tenantId: 'contoso-tenant', clientId,
      auth: { type: 'clientSecret', secret: 'support-client-secret' },
      send: { via: 'smtp' },
      endpoints: { authority: entra.url },
    } } }, 'test').profiles.get('support')!;
  }

  function secretsWith(value: string): CachedSecretStore {
    return new CachedSecretStore(new EnvironmentSecretStore({ SUPPORT_CLIENT_SECRET: value }));
  }

  function requestsFor(clientId: string) {
    return entra.tokenRequests().filter((r) => r.clientId === clientId);
  }

  it('twenty concurrent callers on a cold provider cause one token request', async () => {
    const p = profile('app-1', 'first-secret-value');
    const before = entra.tokenRequests().length;
    const tokens = new ProfileTokenProvider(p, secretsWith('first-secret-value'));
    const got = await Promise.all(Array.from({ length: 20 }, () => tokens.getToken('https://outlook.office365.com/.default')));
    assert.equal(new Set(got).size, 1);
    assert.ok(entra.validate(got[0]!, 'https://outlook.office365.com'));
    assert.equal(entra.tokenRequests().length - before, 1);
  });

  it('asks for a token per scope, each valid only for its own resource', async () => {
    const p = profile('app-scopes', 'scopes-secret-value');
    const tokens = new ProfileTokenProvider(p, secretsWith('scopes-secret-value'));
    const [graph, exchange] = await Promise.all([tokens.getToken(graphScope(p.endpoints)), tokens.getToken(exchangeScope(p.endpoints))]);
    assert.ok(entra.validate(graph, 'https://graph.microsoft.com'));
    assert.ok(entra.validate(exchange, 'https://outlook.office365.com'));
    assert.equal(entra.validate(graph, 'https://outlook.office365.com'), undefined);
    assert.deepEqual(requestsFor('app-scopes').map((r) => r.scope).sort(), ['https://graph.microsoft.com/.default', 'https://outlook.office365.com/.default']);
  });

  it('reuses a token until shortly before it expires, then fetches a new one', async (t) => {
    // Lifetimes under MSAL's own five-minute renewal offset, so that MSAL's cache does not
    // hide the renewal: the provider alone decides when a request is made.
    t.after(() => (entra.tokenLifetimeSeconds = 3600));
    entra.tokenLifetimeSeconds = 240;
    let now = Date.now();
    const p = profile('app-expiry', 'expiry-secret-value');
    const tokens = new ProfileTokenProvider(p, secretsWith('expiry-secret-value'), { refreshMarginMs: 60_000, now: () => now });

    const first = await tokens.getToken(OUTLOOK);
    assert.equal(requestsFor('app-expiry').length, 1);

    now += 170_000;
    assert.equal(await tokens.getToken(OUTLOOK), first, 'a token with 70 s left was not reused');
    assert.equal(requestsFor('app-expiry').length, 1);

    now += 20_000;
    const second = await tokens.getToken(OUTLOOK);
    assert.notEqual(second, first);
    assert.ok(entra.validate(second, 'https://outlook.office365.com'));
    assert.equal(requestsFor('app-expiry').length, 2);
  });

  it('a thousand sequential calls within the lifetime cost one token request', async () => {
    const p = profile('app-thousand', 'thousand-secret-value');
    const tokens = new ProfileTokenProvider(p, secretsWith('thousand-secret-value'));
    for (let i = 0; i < 1000; i++) await tokens.getToken(OUTLOOK);
    assert.equal(requestsFor('app-thousand').length, 1);
  });

  it('a wrong client secret is ETOKEN with the AADSTS7000215 hint, and the secret is not in the error', async () => {
    const p = profile('app-wrong', 'the-registered-secret');
    const tokens = new ProfileTokenProvider(p, secretsWith('a-stale-wrong-secret'));
    const error = await mailErrorFrom(tokens.getToken(OUTLOOK));
    assert.equal(error.code, 'ETOKEN');
    assert.equal(error.status, 502);
    assert.equal(error.profile, 'support');
    assert.equal(error.providerCode, 'AADSTS7000215');
    assert.match(error.hint ?? '', /client secret is wrong or expired/);
    assert.doesNotMatch(`${error.message} ${error.hint}`, /a-stale-wrong-secret|the-registered-secret/);
    assert.deepEqual(requestsFor('app-wrong').map((r) => r.outcome), ['refused']);
  });

  it('does not keep a failed credential: the next call after a refusal asks again', async () => {
    const p = profile('app-retry', 'retry-secret-value');
    const secrets = secretsWith('retry-secret-value');
    const app = entra.apps.get('app-retry')!;
    app.secret = 'not-yet-the-same';
    const tokens = new ProfileTokenProvider(p, secrets);
    await assert.rejects(tokens.getToken(OUTLOOK), (e: unknown) => e instanceof MailError && e.code === 'ETOKEN');
    app.secret = 'retry-secret-value';
    assert.ok(entra.validate(await tokens.getToken(OUTLOOK)));
    assert.deepEqual(requestsFor('app-retry').map((r) => r.outcome), ['refused', 'issued']);
  });

  it('a renewal while a token request is in flight still leaves one request for the callers after it', async () => {
    const p = profile('app-renew-inflight', 'renew-inflight-secret');
    // Every secret read waits until the test lets it through, oldest first.
    const held: Array<() => void> = [];
    const gated: SecretStore = {
      kind: 'keyVault',
      getSecret: () => new Promise<string>((resolve) => held.push(() => resolve('renew-inflight-secret'))),
    };
    const tokens = new ProfileTokenProvider(p, new CachedSecretStore(gated));
    const beforeRenewal = tokens.getToken(OUTLOOK);
    await until(() => held.length === 1);
    tokens.renew();
    const afterRenewal = tokens.getToken(OUTLOOK);
    await until(() => held.length === 2);
    held[0]!();
    await beforeRenewal;
    const later = tokens.getToken(OUTLOOK);
    held[1]!();
    assert.equal(await later, await afterRenewal);
    assert.deepEqual(requestsFor('app-renew-inflight').map((r) => r.outcome), ['issued', 'issued']);
  });

  it('a caller that gives up does not fail the others waiting for the same token, nor count as an auth failure', async () => {
    const p = profile('app-abort', 'abort-secret-value');
    // The secret read is held until released, as a slow Key Vault would; like the real store, it stops when its signal fires.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const slow: SecretStore = {
      kind: 'keyVault',
      async getSecret(_name, options = {}) {
        await new Promise<void>((resolve, reject) => {
          options.abortSignal?.addEventListener('abort', () => reject(options.abortSignal!.reason), { once: true });
          void released.then(resolve);
        });
        return 'abort-secret-value';
      },
    };
    const tokens = new ProfileTokenProvider(p, new CachedSecretStore(slow));
    const impatient = new AbortController();
    const first = tokens.getToken(OUTLOOK, { abortSignal: impatient.signal });
    const second = tokens.getToken(OUTLOOK);
    impatient.abort();
    await assert.rejects(first, (e: unknown) => !(e instanceof MailError) && (e as Error).name === 'AbortError');
    release();
    assert.ok(entra.validate(await second, 'https://outlook.office365.com'));
    assert.deepEqual(requestsFor('app-abort').map((r) => r.outcome), ['issued']);
  });

  it('TOKEN_TIMEOUT_SECONDS bounds a token request: one held beyond it fails every caller waiting for it with a transient ETOKEN, and the next call asks again', async () => {
    entra.register({ tenantId: 'contoso-tenant', clientId: 'app-timeout', secret: 'timeout-secret-value' });
    const profiles = { profiles: { support: { mailbox: 'support@contoso.com', tenantId: 'contoso-tenant', clientId: 'app-timeout', auth: { type: 'clientSecret', secret: 'support-client-secret' }, send: { via: 'smtp' }, endpoints: { authority: entra.url } } } };
    const runtime = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), SUPPORT_CLIENT_SECRET: 'timeout-secret-value', TOKEN_TIMEOUT_SECONDS: '1' }, logger: silentLogger });
    // Held for far longer than the limit: at the default 60 s the callers would still be waiting when the test's own timeout fails it.
    entra.inject({ status: 500, delayMs: 30_000, times: 1, match: /^POST .*\/token/ });
    try {
      const tokens = runtime.tokens(runtime.profile('support'));
      const waiting = [tokens.getToken(OUTLOOK), tokens.getToken(OUTLOOK)];
      for (const call of waiting) {
        const error = await mailErrorFrom(call);
        assert.equal(error.code, 'ETOKEN');
        assert.equal(isTransient(error), true, 'a token endpoint that did not answer in time is worth retrying');
      }
      assert.ok(entra.validate(await tokens.getToken(OUTLOOK), 'https://outlook.office365.com'));
    } finally {
      entra.clearFaults();
      await runtime.close();
    }
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
