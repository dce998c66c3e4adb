import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Profile } from '../../shared/config/profiles.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailError } from '../../shared/errors.js';
import { ProfileTokenProvider, withAuthRetry } from '../../shared/identity/tokenProvider.js';
import { createSecretStore } from '../../shared/secrets/index.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';

const TENANT = 'contoso-tenant';
const OUTLOOK = 'https://outlook.office365.com/.default';
const GRAPH = 'https://graph.microsoft.com/.default';
/** The Function App's own identity, which reads the vault (AZURE_* for DefaultAzureCredential). */
const VAULT_READER = { tenantId: TENANT, clientId: 'function-app', secret: 'function-app-vault-secret' };

describe('a rotated client secret in Key Vault is picked up after one authentication failure', () => {
  const entra = new TokenEndpointPeer();
  const vault = new KeyVaultPeer(entra, TENANT);
  let restoreEnv: () => void;

  before(async () => {
    await entra.start();
    await vault.start();
    entra.register(VAULT_READER);
    // DefaultAzureCredential's EnvironmentCredential reads these from process.env.
    restoreEnv = setProcessEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: entra.url });
  });
  after(async () => {
    restoreEnv();
    await vault.stop();
    await entra.stop();
  });

  /** A clientSecret profile whose secret lives in the vault, with its app registered on the token endpoint. */
  function setUp(clientId: string, secretName: string, firstSecret: string) {
    const app = entra.register({ tenantId: TENANT, clientId, secret: firstSecret });
    vault.setSecret(secretName, firstSecret);
    const profile: Profile = parseProfiles({ profiles: { helpdesk: {
      mailbox: 'helpdesk@contoso.com', tenantId: TENANT, clientId,
      auth: { type: 'clientSecret', secret: secretName },
      send: { via: 'smtp' },
      endpoints: { authority: entra.url },
    } } }, 'test').profiles.get('helpdesk')!;
    const store = createSecretStore({
      KEY_VAULT_URL: vault.url,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      AZURE_AUTHORITY_HOST: entra.url,
    });
    const tokens = new ProfileTokenProvider(profile, store);
    /** What the mail server does: accept only tokens the endpoint issued and still honours. */
    const useToken = (scope: string, audience: string) => async () => {
      const token = await tokens.getToken(scope);
      if (!entra.validate(token, audience)) throw new MailError('EAUTH', '535 5.7.3 Authentication unsuccessful', { providerCode: '5.7.3' });
      return token;
    };
    const rotate = (next: string) => {
      app.secret = next;
      vault.setSecret(secretName, next);
      // Tokens issued for the old secret stop working; the Function App's vault token stays valid.
      for (const [token, issued] of entra.issued) if (issued.clientId === clientId) entra.issued.delete(token);
    };
    const appRequests = () => entra.tokenRequests().filter((r) => r.clientId === clientId);
    return { tokens, useToken, rotate, appRequests };
  }

  it('the client secret of a profile comes from the vault', async () => {
    const { tokens, appRequests } = setUp('app-from-vault', 'helpdesk-secret-a', 'vault-held-secret-a1');
    const token = await tokens.getToken(OUTLOOK);
    assert.equal(entra.validate(token, 'https://outlook.office365.com')?.clientId, 'app-from-vault');
    assert.equal(vault.secretReads('helpdesk-secret-a').filter((r) => r.status === 200).length, 1);
    assert.deepEqual(appRequests().map((r) => r.outcome), ['issued']);
  });

  it('a mail server refusing the cached token (EAUTH) makes the provider re-read the vault and succeed on the second attempt', async () => {
    const { tokens, useToken, rotate, appRequests } = setUp('app-eauth', 'helpdesk-secret-b', 'vault-held-secret-b1');
    const sendOverSmtp = useToken(OUTLOOK, 'https://outlook.office365.com');
    await sendOverSmtp();
    const readsBefore = vault.secretReads('helpdesk-secret-b').length;

    rotate('vault-held-secret-b2');
    let attempts = 0;
    const token = await withAuthRetry(tokens, () => {
      attempts++;
      return sendOverSmtp();
    });

    assert.equal(attempts, 2);
    assert.ok(entra.validate(token, 'https://outlook.office365.com'));
    assert.equal(vault.secretReads('helpdesk-secret-b').length - readsBefore, 1, 'the secret was not re-read exactly once');
    assert.deepEqual(appRequests().map((r) => r.outcome), ['issued', 'issued']);
  });

  it('a token request refused for the old secret (ETOKEN) makes the provider re-read the vault and succeed on the second attempt', async () => {
    const { tokens, useToken, rotate, appRequests } = setUp('app-etoken', 'helpdesk-secret-c', 'vault-held-secret-c1');
    await useToken(OUTLOOK, 'https://outlook.office365.com')();
    const readsBefore = vault.secretReads('helpdesk-secret-c').length;

    // The Graph scope has no cached token: the credential built from the old secret asks and is refused.
    rotate('vault-held-secret-c2');
    let attempts = 0;
    const token = await withAuthRetry(tokens, () => {
      attempts++;
      return useToken(GRAPH, 'https://graph.microsoft.com')();
    });

    assert.equal(attempts, 2);
    assert.ok(entra.validate(token, 'https://graph.microsoft.com'));
    assert.equal(vault.secretReads('helpdesk-secret-c').length - readsBefore, 1);
    assert.deepEqual(appRequests().map((r) => r.outcome), ['issued', 'refused', 'issued']);
  });

  it('retries only once: a secret still wrong after the re-read fails with ETOKEN and its hint', async () => {
    const { tokens, useToken, appRequests } = setUp('app-stale', 'helpdesk-secret-d', 'vault-held-secret-d1');
    entra.apps.get('app-stale')!.secret = 'rotated-in-entra-but-not-in-the-vault';
    let attempts = 0;
    const error = await mailErrorFrom(withAuthRetry(tokens, () => {
      attempts++;
      return useToken(OUTLOOK, 'https://outlook.office365.com')();
    }));

    assert.equal(attempts, 2);
    assert.equal(error.code, 'ETOKEN');
    assert.equal(error.providerCode, 'AADSTS7000215');
    assert.equal(vault.secretReads('helpdesk-secret-d').filter((r) => r.status === 200).length, 2);
    assert.deepEqual(appRequests().map((r) => r.outcome), ['refused', 'refused']);
  });

  it('a failure that is not about authentication (a refused sender, throttling) is not retried and leaves token and secret alone', async () => {
    const { tokens, appRequests } = setUp('app-not-auth', 'helpdesk-secret-e', 'vault-held-secret-e1');
    const reads = () => vault.secretReads('helpdesk-secret-e').filter((r) => r.status === 200).length;
    for (const refusal of [
      new MailError('ESEND_DENIED', '550 5.7.60 Client does not have permissions to send as this sender', { field: 'from' }),
      new MailError('ETHROTTLED', '432 4.3.2 sender thread limit exceeded', { retryAfter: 60 }),
    ]) {
      let attempts = 0;
      const error = await mailErrorFrom(withAuthRetry(tokens, async () => {
        attempts++;
        await tokens.getToken(OUTLOOK);
        throw refusal;
      }));
      assert.equal(error, refusal);
      assert.equal(attempts, 1, `${refusal.code} was retried`);
    }
    assert.equal(reads(), 1, 'the secret was read once, for the first token, and not again');
    assert.deepEqual(appRequests().map((r) => r.outcome), ['issued'], 'the cached token was kept');
  });
});
