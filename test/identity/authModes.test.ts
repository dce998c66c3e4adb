import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Profile } from '../../shared/config/profiles.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { ProfileTokenProvider } from '../../shared/identity/tokenProvider.js';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore } from '../../shared/secrets/store.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';

const OUTLOOK = 'https://outlook.office365.com/.default';
const GRAPH = 'https://graph.microsoft.com/.default';

function profileWith(entra: TokenEndpointPeer, fields: Record<string, unknown>): Profile {
  return parseProfiles({ profiles: { ops: {
    mailbox: 'ops@contoso.com',
    send: { via: 'graph' },
    endpoints: { authority: entra.url },
    ...fields,
  } } }, 'test').profiles.get('ops')!;
}

async function keyAndCertificate(commonName: string): Promise<{ privateKey: string; cert: string }> {
  const selfsigned = require('selfsigned') as typeof import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: commonName }], { keySize: 2048 });
  return { privateKey: pems.private, cert: pems.cert };
}

describe('each auth mode obtains tokens through the real @azure/identity', () => {
  const entra = new TokenEndpointPeer();
  before(() => entra.start());
  after(() => entra.stop());

  describe('certificate', () => {
    it('signs a client assertion with the PEM key from the secret store, and the endpoint verifies it against the registered certificate', async () => {
      const { privateKey, cert } = await keyAndCertificate('ops-app');
      entra.register({ tenantId: 'contoso-tenant', clientId: 'cert-app', certificatePem: cert });
      const p = profileWith(entra, { tenantId: 'contoso-tenant', clientId: 'cert-app', auth: { type: 'certificate', certificate: 'ops-cert' } });
      const secrets = new CachedSecretStore(new EnvironmentSecretStore({ OPS_CERT: `${privateKey}\n${cert}` }));

      const token = await new ProfileTokenProvider(p, secrets).getToken(GRAPH);

      const issued = entra.validate(token, 'https://graph.microsoft.com');
      assert.equal(issued?.via, 'certificate');
      assert.equal(issued?.clientId, 'cert-app');
    });

    it('a certificate the app does not know is refused as ETOKEN with the certificate hint', async () => {
      const registered = await keyAndCertificate('registered');
      const other = await keyAndCertificate('unregistered');
      entra.register({ tenantId: 'contoso-tenant', clientId: 'cert-app-2', certificatePem: registered.cert });
      const p = profileWith(entra, { tenantId: 'contoso-tenant', clientId: 'cert-app-2', auth: { type: 'certificate', certificate: 'ops-cert' } });
      const secrets = new CachedSecretStore(new EnvironmentSecretStore({ OPS_CERT: `${other.privateKey}\n${other.cert}` }));

      const error = await mailErrorFrom(new ProfileTokenProvider(p, secrets).getToken(GRAPH));
      assert.equal(error.code, 'ETOKEN');
      assert.equal(error.providerCode, 'AADSTS700027');
      assert.match(error.hint ?? '', /certificate is not registered/);
      assert.doesNotMatch(error.message, /PRIVATE KEY/);
    });
  });

  describe('managedIdentity (App Service IDENTITY_ENDPOINT + IDENTITY_HEADER)', () => {
    // ManagedIdentityCredential (MSAL) reads the App Service variables from process.env, once per process.
    let restoreEnv: () => void;
    before(() => {
      restoreEnv = setProcessEnv({ IDENTITY_ENDPOINT: entra.managedIdentityEndpoint, IDENTITY_HEADER: entra.identityHeader });
    });
    after(() => restoreEnv());

    const noSecrets = new EnvironmentSecretStore({});
    const miRequests = () => entra.tokenRequests().filter((r) => r.path.startsWith('/msi/'));

    it('system-assigned: a token for the resource, with no client id on the request', async () => {
      const before = miRequests().length;
      const p = profileWith(entra, { auth: { type: 'managedIdentity' } });
      const token = await new ProfileTokenProvider(p, noSecrets).getToken(OUTLOOK);
      const issued = entra.validate(token, 'https://outlook.office365.com');
      assert.equal(issued?.via, 'managedIdentity');
      assert.equal(issued?.clientId, 'system-assigned');
      assert.deepEqual(miRequests().slice(before).map((r) => [r.clientId, r.outcome]), [['system-assigned', 'issued']]);
    });

    it('user-assigned: the identity\'s clientId travels with the request', async () => {
      entra.userAssignedIdentities.add('11111111-2222-3333-4444-555555555555');
      const before = miRequests().length;
      const p = profileWith(entra, { auth: { type: 'managedIdentity', clientId: '11111111-2222-3333-4444-555555555555' } });
      const tokens = new ProfileTokenProvider(p, noSecrets);
      const got = await Promise.all(Array.from({ length: 20 }, () => tokens.getToken(GRAPH)));
      assert.equal(new Set(got).size, 1);
      const issued = entra.validate(got[0]!, 'https://graph.microsoft.com');
      assert.equal(issued?.clientId, '11111111-2222-3333-4444-555555555555');
      assert.deepEqual(miRequests().slice(before).map((r) => [r.clientId, r.outcome]), [['11111111-2222-3333-4444-555555555555', 'issued']]);
    });

    it('a profile naming no identity uses the app setting AZURE_CLIENT_ID (the app\'s user-assigned identity, as infra/ sets it)', async () => {
      const appIdentity = '22222222-3333-4444-5555-666666666666';
      entra.userAssignedIdentities.add(appIdentity);
      const before = miRequests().length;
      const doc = { profiles: { ops: { mailbox: 'ops@contoso.com', auth: { type: 'managedIdentity' }, send: { via: 'graph' }, endpoints: { authority: entra.url } } } };
      const runtime = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(doc), AZURE_CLIENT_ID: appIdentity }, logger: silentLogger });
      try {
        const token = await runtime.tokens(runtime.profile('ops')).getToken(OUTLOOK);
        assert.equal(entra.validate(token, 'https://outlook.office365.com')?.clientId, appIdentity);
      } finally {
        await runtime.close();
      }
      assert.deepEqual(miRequests().slice(before).map((r) => [r.clientId, r.outcome]), [[appIdentity, 'issued']]);
    });

    it('a user-assigned identity not attached to the app is ETOKEN with a hint to attach it', async () => {
      const p = profileWith(entra, { auth: { type: 'managedIdentity', clientId: '99999999-2222-3333-4444-555555555555' } });
      const error = await mailErrorFrom(new ProfileTokenProvider(p, noSecrets).getToken(OUTLOOK));
      assert.equal(error.code, 'ETOKEN');
      assert.equal(error.profile, 'ops');
      assert.match(error.hint ?? '', /not attached/);
      assert.deepEqual(miRequests().at(-1), { path: '/msi/token', clientId: '99999999-2222-3333-4444-555555555555', scope: 'https://outlook.office365.com', outcome: 'refused' });
    });
  });
});
