import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretStore } from '../../shared/secrets/index.js';
import { KeyVaultSecretStore } from '../../shared/secrets/keyVault.js';
import { KeyVaultPeer, VAULT_RESOURCE } from '../peers/keyVaultPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';

const TENANT = 'vault-tenant';
const VAULT_APP = { tenantId: TENANT, clientId: 'function-app-identity', secret: 'vault-reader-secret-1' };

describe('secrets from Key Vault (KEY_VAULT_URL) through the real SecretClient and DefaultAzureCredential', () => {
  const entra = new TokenEndpointPeer();
  const vault = new KeyVaultPeer(entra, TENANT);
  let restoreEnv: () => void;

  function vaultEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return {
      KEY_VAULT_URL: vault.url,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      AZURE_AUTHORITY_HOST: entra.url,
      ...extra,
    };
  }

  before(async () => {
    await entra.start();
    await vault.start();
    entra.register(VAULT_APP);
    // DefaultAzureCredential's EnvironmentCredential reads AZURE_* from process.env, not from our env object.
    restoreEnv = setProcessEnv({
      AZURE_TENANT_ID: VAULT_APP.tenantId,
      AZURE_CLIENT_ID: VAULT_APP.clientId,
      AZURE_CLIENT_SECRET: VAULT_APP.secret,
      AZURE_AUTHORITY_HOST: entra.url,
    });
  });
  after(async () => {
    restoreEnv();
    await vault.stop();
    await entra.stop();
  });
  beforeEach(() => {
    vault.forbidden = false;
  });

  it('reads a secret after answering the bearer challenge with a vault-audience token from the environment identity', async () => {
    vault.setSecret('support-client-secret', 'the-client-secret-from-the-vault');
    const store = createSecretStore(vaultEnv());
    assert.equal(store.kind, 'keyVault');
    const from = vault.requests.length;
    const tokensBefore = entra.tokenRequests().length;

    assert.equal(await store.getSecret('support-client-secret'), 'the-client-secret-from-the-vault');

    const seen = vault.requests.slice(from);
    assert.deepEqual(
      seen.map((r) => [r.method, r.path, r.authorized, r.status]),
      [
        ['GET', '/secrets/support-client-secret/', false, 401],
        ['GET', '/secrets/support-client-secret/', true, 200],
      ],
    );
    assert.match(seen[1]!.apiVersion ?? '', /^\d{4}-\d{2}-\d{2}(-preview)?$/);
    const tokenRequests = entra.tokenRequests().slice(tokensBefore);
    assert.deepEqual(tokenRequests.map((r) => [r.clientId, r.scope, r.outcome]), [[VAULT_APP.clientId, `${VAULT_RESOURCE}/.default`, 'issued']]);
  });

  it('serves a second read within the TTL from memory and goes back to the vault after it', async () => {
    vault.setSecret('ttl-secret', 'ttl-value-one');
    const store = createSecretStore(vaultEnv({ SECRET_CACHE_TTL_SECONDS: '1' }));
    assert.equal(await store.getSecret('ttl-secret'), 'ttl-value-one');
    const reads = vault.secretReads('ttl-secret').length;

    vault.setSecret('ttl-secret', 'ttl-value-two');
    assert.equal(await store.getSecret('ttl-secret'), 'ttl-value-one');
    assert.equal(vault.secretReads('ttl-secret').length, reads, 'a read within the TTL reached the vault');

    await new Promise((resolve) => setTimeout(resolve, 1100));
    assert.equal(await store.getSecret('ttl-secret'), 'ttl-value-two');
    assert.equal(vault.secretReads('ttl-secret').length, reads + 1);
  });

  it('reads the newest version after a rotation through PUT /secrets/{name}', async () => {
    const { SecretClient } = require('@azure/keyvault-secrets') as typeof import('@azure/keyvault-secrets');
    const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
    const admin = new SecretClient(vault.url, new DefaultAzureCredential({ authorityHost: entra.url, disableInstanceDiscovery: true }), {
      disableChallengeResourceVerification: true,
    });
    await admin.setSecret('rotated-secret', 'before-rotation');
    const store = createSecretStore(vaultEnv());
    assert.equal(await store.getSecret('rotated-secret'), 'before-rotation');

    const rotated = await admin.setSecret('rotated-secret', 'after-rotation');
    assert.equal(vault.requests.filter((r) => r.method === 'PUT' && r.path === '/secrets/rotated-secret' && r.status === 200).length, 2);
    store.invalidate?.('rotated-secret');
    assert.equal(await store.getSecret('rotated-secret'), 'after-rotation');
    assert.equal((await admin.getSecret('rotated-secret', { version: rotated.properties.version! })).value, 'after-rotation');
  });

  it('reports a missing secret as ESECRET_NOT_FOUND with a hint naming the secret', async () => {
    const store = createSecretStore(vaultEnv());
    const error = await mailErrorFrom(store.getSecret('no-such-secret'));
    assert.equal(error.code, 'ESECRET_NOT_FOUND');
    assert.equal(error.field, 'no-such-secret');
    assert.match(error.hint ?? '', /Create the secret "no-such-secret"/);
    assert.equal(vault.secretReads('no-such-secret').at(-1)?.status, 404);
  });

  it('reports a 403 from the vault as ESECRET_ACCESS, not as a missing secret', async () => {
    vault.setSecret('guarded-secret', 'guarded-value');
    vault.forbidden = true;
    const store = createSecretStore(vaultEnv());
    const error = await mailErrorFrom(store.getSecret('guarded-secret'));
    assert.equal(error.code, 'ESECRET_ACCESS');
    assert.equal(error.status, 502);
    assert.match(error.message, /HTTP 403/);
    assert.match(error.hint ?? '', /Key Vault Secrets User/);
    assert.equal(vault.secretReads('guarded-secret').at(-1)?.status, 403);
  });

  it('does not cache a failed read: the secret is fetched again once access is granted', async () => {
    vault.setSecret('granted-later', 'granted-value');
    vault.forbidden = true;
    const store = createSecretStore(vaultEnv());
    await mailErrorFrom(store.getSecret('granted-later'));
    vault.forbidden = false;
    assert.equal(await store.getSecret('granted-later'), 'granted-value');
  });

  it('concurrent first reads build one vault client and one credential, not one each', async () => {
    vault.setSecret('first-a', 'value-a');
    vault.setSecret('first-b', 'value-b');
    const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
    let credentials = 0;
    const store = new KeyVaultSecretStore({
      vaultUrl: vault.url,
      disableChallengeResourceVerification: true,
      credential: async () => {
        credentials++;
        await new Promise((resolve) => setImmediate(resolve));
        return new DefaultAzureCredential({ authorityHost: entra.url, disableInstanceDiscovery: true });
      },
    });
    assert.deepEqual(await Promise.all([store.getSecret('first-a'), store.getSecret('first-b')]), ['value-a', 'value-b']);
    assert.equal(credentials, 1);
  });
});
