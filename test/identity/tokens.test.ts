import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles, type Profile } from '../../shared/config/profiles.js';
import { ProfileTokenProvider } from '../../shared/identity/tokenProvider.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore } from '../../shared/secrets/store.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';

describe('access tokens from the real @azure/identity against a loopback Entra endpoint', () => {
  const entra = new TokenEndpointPeer();
  before(() => entra.start());
  after(() => entra.stop());

  function profile(): Profile {
    entra.register({ tenantId: 'contoso-tenant', clientId: 'app-1', secret: 'first-secret-value' });
    return parseProfiles({ profiles: { support: {
      mailbox: 'support@contoso.com', tenantId: 'contoso-tenant', clientId: 'app-1',
      auth: { type: 'clientSecret', secret: 'support-client-secret' },
      send: { via: 'smtp' },
      endpoints: { authority: entra.url },
    } } }, 'test').profiles.get('support')!;
  }

  it('twenty concurrent callers on a cold provider cause one token request', async () => {
    const p = profile();
    const before = entra.tokenRequests().length;
    const tokens = new ProfileTokenProvider(p, new CachedSecretStore(new EnvironmentSecretStore({ SUPPORT_CLIENT_SECRET: 'first-secret-value' })));
    const got = await Promise.all(Array.from({ length: 20 }, () => tokens.getToken('https://outlook.office365.com/.default')));
    assert.equal(new Set(got).size, 1);
    assert.ok(entra.validate(got[0]!, 'https://outlook.office365.com'));
    assert.equal(entra.tokenRequests().length - before, 1);
  });
});
