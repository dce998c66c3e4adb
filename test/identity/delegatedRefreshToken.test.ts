import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Profile } from '../../shared/config/profiles.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { ProfileTokenProvider, withAuthRetry } from '../../shared/identity/tokenProvider.js';
import { silentLogger } from '../../shared/log.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore, type SecretStore } from '../../shared/secrets/store.js';
import type { RegisteredApp } from '../peers/tokenEndpoint.js';
import { DelegatedHarness, TENANT } from '../support/delegatedHarness.js';
import { mailErrorFrom } from '../support/mailError.js';
import { capturingLogger } from '../support/receiveHarness.js';

const OUTLOOK = 'https://outlook.office365.com/.default';
const GRAPH = 'https://graph.microsoft.com/.default';
const CONSENTED = ['https://outlook.office365.com/SMTP.Send', 'https://outlook.office365.com/IMAP.AccessAsUser.All', 'https://graph.microsoft.com/Mail.Send'];

describe('a delegated profile obtains tokens from a user\'s refresh token (real MSAL, loopback Entra and Key Vault)', () => {
  const harness = new DelegatedHarness();
  const { entra } = harness;
  before(() => harness.start());
  after(() => harness.stop());
  const vaultStore = () => harness.vaultStore();
  const quiet = { logger: silentLogger };

  /** A registered app, a refresh token the user consented to earlier, kept in the vault, and a profile that uses it. */
  function setUp(clientId: string, options: { app?: Partial<RegisteredApp>; upn?: string; secretless?: boolean } = {}) {
    const upn = options.upn ?? `${clientId}@contoso.com`;
    const secret = options.secretless ? undefined : `${clientId}-client-secret-value`;
    const app = entra.register({ tenantId: TENANT, clientId, secret, ...options.app });
    const refreshToken = entra.grantRefreshToken({ tenantId: TENANT, clientId, upn, scopes: CONSENTED });
    harness.vault.setSecret(`${clientId}-rt`, refreshToken);
    if (secret) harness.vault.setSecret(`${clientId}-secret`, secret);
    const profile: Profile = parseProfiles({ profiles: { [clientId]: {
      mailbox: upn, tenantId: TENANT, clientId,
      auth: { type: 'delegated', refreshToken: `${clientId}-rt`, ...(secret ? { secret: `${clientId}-secret` } : {}) },
      send: { via: 'smtp' },
      endpoints: { authority: entra.url },
    } } }, 'test').profiles.get(clientId)!;
    const requests = (grant = 'refresh_token') => entra.tokenRequests().filter((r) => r.clientId === clientId && r.grant === grant);
    /** What the app wrote to the vault: undefined when it wrote nothing, else the value a fresh reader gets. */
    const stored = async (): Promise<string | undefined> => (harness.writes(`${clientId}-rt`) === 0 ? undefined : vaultStore().getSecret(`${clientId}-rt`));
    return { app, upn, profile, refreshToken, requests, stored };
  }

  it('gets an Exchange token for the consenting user; MSAL asks for the resource\'s .default plus offline_access', async () => {
    const { upn, profile, requests } = setUp('delegated-basic');
    const token = await new ProfileTokenProvider(profile, vaultStore(), quiet).getToken(OUTLOOK);

    const issued = entra.validate(token, 'https://outlook.office365.com');
    assert.equal(issued?.via, 'delegated');
    assert.equal(issued?.upn, upn);
    const [request] = requests();
    assert.ok(request);
    assert.deepEqual(new Set(request.scope?.split(' ')), new Set([OUTLOOK, 'openid', 'profile', 'offline_access']));
  });

  it('writes a rotated refresh token back to Key Vault, and the one it replaces no longer works', async () => {
    const { profile, refreshToken, requests, stored } = setUp('delegated-rotate');
    const lines: string[] = [];
    await new ProfileTokenProvider(profile, vaultStore(), { logger: capturingLogger(lines) }).getToken(OUTLOOK);

    const rotated = await stored();
    assert.ok(rotated, 'no new refresh token was written to the vault');
    assert.notEqual(rotated, refreshToken);
    assert.equal(entra.refreshTokenValid(refreshToken), false);
    assert.equal(entra.refreshTokenValid(rotated), true);
    // A new process (fresh store and provider) starts from the vault's new value.
    const token = await new ProfileTokenProvider(profile, vaultStore(), { logger: capturingLogger(lines) }).getToken(GRAPH);
    assert.equal(entra.validate(token, 'https://graph.microsoft.com')?.via, 'delegated');
    assert.deepEqual(requests().map((r) => r.outcome), ['issued', 'issued']);
    assert.notEqual(await stored(), rotated, 'the second rotation was not written');
    for (const line of lines) {
      assert.doesNotMatch(line, /rt-|tok-/, `a token reached the log: ${line}`);
    }
    assert.ok(lines.some((l) => /"operation":"refreshToken.rotate".*"outcome":"ok"/.test(l)));
  });

  it('20 concurrent callers cost one refresh request', async () => {
    const { profile, requests } = setUp('delegated-flight');
    const tokens = new ProfileTokenProvider(profile, vaultStore(), quiet);
    const got = await Promise.all(Array.from({ length: 20 }, () => tokens.getToken(OUTLOOK)));
    assert.equal(new Set(got).size, 1);
    assert.equal(requests().length, 1);
  });

  it('Graph and Exchange tokens asked for at once both succeed: refreshes run one after the other, each with the newest token', async () => {
    const { profile, requests } = setUp('delegated-two-scopes');
    const tokens = new ProfileTokenProvider(profile, vaultStore(), quiet);
    const [exchange, graph] = await Promise.all([tokens.getToken(OUTLOOK), tokens.getToken(GRAPH)]);
    assert.ok(entra.validate(exchange, 'https://outlook.office365.com'));
    assert.ok(entra.validate(graph, 'https://graph.microsoft.com'));
    assert.deepEqual(requests().map((r) => r.outcome), ['issued', 'issued']);
  });

  it('an app whose refresh token stays valid (no new one in the answer) keeps using it and writes nothing', async () => {
    const { profile, refreshToken, requests, stored } = setUp('delegated-keep', { app: { refreshTokens: 'keep' } });
    const tokens = new ProfileTokenProvider(profile, vaultStore(), quiet);
    await tokens.getToken(OUTLOOK);
    await tokens.getToken(GRAPH);
    assert.equal(await stored(), undefined);
    assert.equal(entra.refreshTokenValid(refreshToken), true);
    assert.deepEqual(requests().map((r) => r.outcome), ['issued', 'issued']);
  });

  it('a public client (no client secret) redeems the refresh token without one', async () => {
    const { profile, requests } = setUp('delegated-public', { secretless: true });
    const token = await new ProfileTokenProvider(profile, vaultStore(), quiet).getToken(OUTLOOK);
    assert.ok(entra.validate(token, 'https://outlook.office365.com'));
    assert.deepEqual(requests().map((r) => r.outcome), ['issued']);
  });

  for (const [reason, code] of [['revoked', 'AADSTS50173'], ['expired', 'AADSTS700082']] as const) {
    it(`a ${reason} refresh token fails with ETOKEN (${code}) and the hint to re-run consent, after one re-read of the vault`, async () => {
      const { profile, upn, requests } = setUp(`delegated-${reason}`);
      entra.invalidateRefreshTokens(upn, reason);
      const tokens = new ProfileTokenProvider(profile, vaultStore(), quiet);
      const error = await mailErrorFrom(withAuthRetry(tokens, () => tokens.getToken(OUTLOOK)));
      assert.equal(error.code, 'ETOKEN');
      assert.equal(error.providerCode, code);
      assert.equal(error.profile, profile.name);
      assert.match(error.hint ?? '', new RegExp(`re-run consent: GET /api/connect/${profile.name}`));
      assert.deepEqual(requests().map((r) => r.errorCode), [reason === 'revoked' ? 50173 : 700082, reason === 'revoked' ? 50173 : 700082]);
      assert.doesNotMatch(`${error.message} ${error.hint}`, /rt-/);
    });
  }

  describe('with the environment secret store, which cannot persist', () => {
    it('keeps the rotated refresh token in memory and warns that a restart loses it', async () => {
      const { profile, refreshToken } = setUp('delegated-env');
      const lines: string[] = [];
      const env = { DELEGATED_ENV_RT: refreshToken, DELEGATED_ENV_SECRET: 'delegated-env-client-secret-value' };
      const store: SecretStore = new CachedSecretStore(new EnvironmentSecretStore(env));
      const tokens = new ProfileTokenProvider(profile, store, { logger: capturingLogger(lines) });
      await tokens.getToken(OUTLOOK);
      // The credential is rebuilt from the store after a renew: the store must hand out the new token.
      tokens.renew();
      const token = await tokens.getToken(GRAPH);
      assert.ok(entra.validate(token, 'https://graph.microsoft.com'));
      assert.equal(env.DELEGATED_ENV_RT, refreshToken, 'the app setting itself cannot change');
      const warnings = lines.filter((l) => /"outcome":"skipped"/.test(l));
      assert.equal(warnings.length, 2);
      assert.match(warnings[0]!, /kept in this process's memory and lost when it restarts/);
      for (const line of lines) assert.doesNotMatch(line, /rt-|tok-/);
    });
  });
});
