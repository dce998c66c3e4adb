import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { consentScopes } from '../../shared/consent/scopes.js';
import type { DelegatedProfile } from '../../shared/identity/delegated.js';
import { createLogger } from '../../shared/log.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailRuntime } from '../../shared/runtime.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore } from '../../shared/secrets/store.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';

const PERSONAL = 'jane.doe@outlook.com';
const CLIENT_ID = 'personal-mail-app';
const personal = (fields: Record<string, unknown>) => ({ mailbox: PERSONAL, tenantId: 'consumers', clientId: CLIENT_ID, auth: { type: 'delegated', refreshToken: 'jane-rt' }, ...fields });

describe('personal Microsoft accounts (tenantId "consumers", Outlook.com)', () => {
  it('get the Outlook.com hosts and the outlook.office.com scopes; Graph addresses them as /me', () => {
    const profile = parseProfiles({ profiles: { jane: personal({ send: { via: 'smtp' }, receive: { via: 'imap', deliver: { queue: { name: 'jane-mail' } } } }) } }, 'test').profiles.get('jane')!;
    assert.deepEqual([profile.endpoints.smtp, profile.endpoints.imap, profile.endpoints.pop3], [
      { host: 'smtp-mail.outlook.com', port: 587 },
      { host: 'outlook.office365.com', port: 993 },
      { host: 'outlook.office365.com', port: 995 },
    ]);
    assert.equal(profile.endpoints.authority, 'https://login.microsoftonline.com');
    assert.equal(profile.endpoints.personal, true);
    assert.deepEqual(new Set(consentScopes(profile as DelegatedProfile)), new Set(['https://outlook.office.com/SMTP.Send', 'https://outlook.office.com/IMAP.AccessAsUser.All']));
    const work = parseProfiles({ profiles: { work: { ...personal({ send: { via: 'smtp' } }), tenantId: 'contoso.com' } } }, 'test').profiles.get('work')!;
    assert.deepEqual([work.endpoints.smtp.host, work.endpoints.personal], ['smtp.office365.com', false], 'a work tenant keeps Exchange Online hosts');
  });

  for (const auth of [{ type: 'clientSecret', secret: 's' }, { type: 'certificate', certificate: 'c' }, { type: 'managedIdentity' }, { type: 'federated' }]) {
    it(`refuse app-only auth ${auth.type} at start-up, naming the profile and auth.type`, async () => {
      const error = await mailErrorFrom((async () => parseProfiles({ profiles: { jane: personal({ auth, send: { via: 'graph' } }) } }, 'test'))());
      assert.equal(error.code, 'ECONFIG');
      assert.match(error.message, /jane/);
      assert.match(error.message, /auth\.type/);
      assert.match(error.message, /consumers/);
    });
  }

  it('exist in the public cloud only', async () => {
    const error = await mailErrorFrom((async () => parseProfiles({ profiles: { jane: personal({ cloud: 'usgov', send: { via: 'smtp' } }) } }, 'test'))());
    assert.equal(error.code, 'ECONFIG');
    assert.match(error.message, /cloud/);
  });

  describe('sending over Graph through /me with a delegated token (real MSAL and Graph client, loopback stand-ins)', () => {
    const entra = new TokenEndpointPeer();
    const graph = new GraphPeer(entra);
    before(async () => {
      await entra.start();
      await graph.start();
      entra.register({ tenantId: 'consumers', clientId: CLIENT_ID, secret: undefined });
      graph.addMailbox(PERSONAL);
    });
    after(async () => {
      await graph.stop();
      await entra.stop();
    });

    it('the message goes out from the signed-in account, and no request names /users/', async () => {
      const refreshToken = entra.grantRefreshToken({ tenantId: 'consumers', clientId: CLIENT_ID, upn: PERSONAL, scopes: ['https://graph.microsoft.com/Mail.Send'] });
      const env = {
        MAIL_PROFILES: JSON.stringify({ profiles: { jane: personal({ send: { via: 'graph' }, endpoints: { authority: entra.url, graph: graph.url } }) } }),
        JANE_RT: refreshToken,
      };
      const runtime = new MailRuntime({ env, secrets: new CachedSecretStore(new EnvironmentSecretStore(env)), logger: createLogger({ log: () => {}, warn: () => {}, error: () => {} }) });
      try {
        await sendMail(runtime, { to: 'ann@example.com', subject: 'from my own account', text: 'hi' });
      } finally {
        await runtime.close();
      }
      assert.equal(graph.sent.at(-1)?.mailbox, PERSONAL);
      assert.equal(graph.meRequests, 1);
      const api = graph.apiRequests();
      assert.ok(api.length > 0);
      for (const request of api) assert.doesNotMatch(request.path, /\/users\//, `${request.method} ${request.path}`);
    });
  });
});
