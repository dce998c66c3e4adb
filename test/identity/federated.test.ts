import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { exchangeScope, graphScope } from '../../shared/config/cloud.js';
import { isMailError } from '../../shared/errors.js';
import { profileSecretNames } from '../../shared/identity/credential.js';
import { ProfileTokenProvider } from '../../shared/identity/tokenProvider.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailRuntime } from '../../shared/runtime.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TOKEN_EXCHANGE_AUDIENCE, TokenEndpointPeer, type FederatedCredential } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';
import { capturingLogger } from '../support/receiveHarness.js';

const TENANT = 'contoso-tenant';
const MAILBOX = 'robot@contoso.com';
const noSecrets = new EnvironmentSecretStore({});

/**
 * Issue 9, item 2: auth type `federated`. The app registration has no secret and no certificate;
 * the Function App's managed identity gets a token for api://AzureADTokenExchange from the App
 * Service identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER, as in Azure), and the real
 * ClientAssertionCredential presents it as the client assertion. The stand-in token endpoint
 * signs that identity token and checks it against the app's federated identity credentials.
 */
describe('auth type federated: the managed identity\'s token is the app registration\'s client assertion', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX] });
  let restoreEnv: () => void;
  let apps = 0;

  before(async () => {
    await Promise.all([entra.start(), graph.start(), smtp.start()]);
    graph.addMailbox(MAILBOX);
    // ManagedIdentityCredential (MSAL) reads the App Service variables from process.env.
    restoreEnv = setProcessEnv({ IDENTITY_ENDPOINT: entra.managedIdentityEndpoint, IDENTITY_HEADER: entra.identityHeader });
  });
  after(async () => {
    restoreEnv();
    await Promise.all([graph.stop(), smtp.stop(), entra.stop()]);
  });

  /**
   * A user-assigned identity attached to the app and an app registration trusting it (or what
   * `credential` says instead). Each test has its own identity: MSAL keeps managed identity
   * tokens in a process-wide cache, per identity and resource.
   */
  function federatedApp(credential: (identity: string) => Partial<FederatedCredential> | 'none' = () => ({})): { clientId: string; identity: string } {
    const n = ++apps;
    const identity = `${String(n).padStart(8, '0')}-1111-2222-3333-444444444444`;
    entra.userAssignedIdentities.add(identity);
    const clientId = `federated-app-${n}`;
    const fields = credential(identity);
    const trusted = { issuer: entra.managedIdentityIssuer, subject: entra.managedIdentityPrincipal(identity), audiences: [TOKEN_EXCHANGE_AUDIENCE] };
    entra.register({ tenantId: TENANT, clientId, federatedCredentials: fields === 'none' ? [] : [{ ...trusted, ...fields }] });
    return { clientId, identity };
  }

  function profileDocument(app: { clientId: string; identity: string }, via: 'graph' | 'smtp', fields: Record<string, unknown> = {}) {
    return {
      mailbox: MAILBOX,
      tenantId: TENANT,
      clientId: app.clientId,
      auth: { type: 'federated', managedIdentityClientId: app.identity },
      send: { via },
      endpoints: { authority: entra.url, graph: graph.url, smtp: smtp.endpoint },
      ...fields,
    };
  }

  const miRequests = () => entra.tokenRequests().filter((r) => r.path === '/msi/token');
  const assertionGrants = (clientId: string) => entra.tokenRequests().filter((r) => r.grant === 'client_credentials' && r.clientId === clientId);

  for (const via of ['graph', 'smtp'] as const) {
    it(`${via}: a send gets its token with the identity's token as the assertion, and no secret is read`, async () => {
      const app = federatedApp();
      const logs: string[] = [];
      const runtime = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { robot: profileDocument(app, via) } }) }, secrets: noSecrets, logger: capturingLogger(logs) });
      try {
        const outcome = await sendMail(runtime, { profile: 'robot', to: 'ann@example.com', subject: `federated over ${via}`, text: 'no secret anywhere' });
        assert.equal(outcome.via, via);
        if (via === 'graph') assert.equal(graph.sent.at(-1)?.message.subject, 'federated over graph');
        else assert.match(smtp.messages.at(-1)?.raw.toString() ?? '', /Subject: federated over smtp/);

        const identityRequests = miRequests().filter((r) => r.clientId === app.identity);
        assert.deepEqual(identityRequests.map((r) => [r.scope, r.outcome]), [[TOKEN_EXCHANGE_AUDIENCE, 'issued']]);
        assert.deepEqual(assertionGrants(app.clientId).map((r) => r.outcome), ['issued']);
        const issued = [...entra.issued.values()].filter((t) => t.clientId === app.clientId);
        assert.deepEqual(issued.map((t) => [t.via, t.audience]), [['federated', via === 'graph' ? 'https://graph.microsoft.com' : 'https://outlook.office365.com']]);
        assert.deepEqual(profileSecretNames(runtime.profile('robot')), []);
        // The identity token is a credential: it never reaches the log.
        const identityToken = [...entra.issued.values()].find((t) => t.clientId === app.identity)!.token;
        assert.ok(logs.length > 0);
        assert.ok(logs.every((line) => !line.includes(identityToken)));
      } finally {
        await runtime.close();
      }
    });
  }

  // MSAL also keeps managed identity tokens (process-wide), but only after one has arrived: the
  // concurrent first requests for two scopes are what only the profile's own cache joins into one.
  it('concurrent token requests for two scopes share one identity token request, and later ones reuse that token', async () => {
    const app = federatedApp();
    const p = parseProfiles({ profiles: { robot: profileDocument(app, 'graph') } }, 'test').profiles.get('robot')!;
    const tokens = new ProfileTokenProvider(p, noSecrets, { refreshMarginMs: 0 });
    await Promise.all([tokens.getToken(graphScope(p.endpoints)), tokens.getToken(exchangeScope(p.endpoints))]);
    await tokens.getToken(graphScope(p.endpoints));

    const grants = assertionGrants(app.clientId);
    assert.deepEqual(grants.map((g) => g.scope), ['https://graph.microsoft.com/.default', 'https://outlook.office365.com/.default'], 'one client assertion grant per scope');
    assert.equal(new Set(grants.map((g) => g.assertion)).size, 1, 'both present the same identity token');
    assert.equal(miRequests().filter((r) => r.clientId === app.identity).length, 1);
  });

  it('an identity token within five minutes of its expiry is not presented: the next assertion is a new one', async () => {
    const app = federatedApp();
    entra.managedIdentityTokenLifetimeSeconds = 240;
    try {
      const p = parseProfiles({ profiles: { robot: profileDocument(app, 'graph') } }, 'test').profiles.get('robot')!;
      const tokens = new ProfileTokenProvider(p, noSecrets);
      await tokens.getToken(graphScope(p.endpoints));
      await tokens.getToken(exchangeScope(p.endpoints));
      const grants = assertionGrants(app.clientId);
      assert.equal(grants.length, 2);
      assert.notEqual(grants[0]!.assertion, grants[1]!.assertion, 'the second grant presents a new identity token');
      assert.ok(miRequests().filter((r) => r.clientId === app.identity).length >= 2);
    } finally {
      entra.managedIdentityTokenLifetimeSeconds = undefined;
    }
  });

  const refusals: Array<[string, (identity: string) => Partial<FederatedCredential> | 'none', Record<string, unknown>, string, RegExp]> = [
    ['a credential whose subject is the identity\'s client id, not its object id', (identity) => ({ subject: identity }), {}, 'AADSTS700213', /subject is the identity's object \(principal\) id, not its client id/],
    ['a credential for another issuer', () => ({ issuer: 'https://sts.example.test/other-tenant/v2.0' }), {}, 'AADSTS700211', /issuer must be https:\/\/127\.0\.0\.1:\d+\/<tenant id>\/v2\.0/],
    ['a usgov profile against a credential with the public audience', () => ({}), { cloud: 'usgov' }, 'AADSTS700212', /audience api:\/\/AzureADTokenExchangeUSGov, which cloud "usgov" asks for/],
    ['an app registration with no federated credential', () => 'none', {}, 'AADSTS70021', /add one for the user-assigned identity with client id \S+ \(auth\.managedIdentityClientId\) with issuer .*audience api:\/\/AzureADTokenExchange\./],
  ];
  for (const [name, credential, fields, providerCode, hint] of refusals) {
    it(`${name} is refused: ETOKEN ${providerCode} with a hint to fix the federated credential, and nothing is sent`, async () => {
      const app = federatedApp(credential);
      const sentBefore = graph.sent.length;
      const runtime = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { robot: profileDocument(app, 'graph', fields) } }) }, secrets: noSecrets, logger: capturingLogger([]) });
      try {
        const error = await mailErrorFrom(sendMail(runtime, { profile: 'robot', to: 'ann@example.com', subject: 'refused', text: 'x' }));
        assert.equal(error.code, 'ETOKEN');
        assert.equal(error.profile, 'robot');
        assert.equal(error.providerCode, providerCode);
        assert.match(error.hint ?? '', hint);
        assert.equal(graph.sent.length, sentBefore);
        assert.equal(assertionGrants(app.clientId).at(-1)?.errorCode, Number(providerCode.slice('AADSTS'.length)));
      } finally {
        await runtime.close();
      }
    });
  }

  it('a user-assigned identity the Function App does not have is ETOKEN naming auth.managedIdentityClientId', async () => {
    const app = federatedApp();
    const p = parseProfiles({ profiles: { robot: profileDocument({ ...app, identity: '99999999-1111-2222-3333-444444444444' }, 'graph') } }, 'test').profiles.get('robot')!;
    const error = await mailErrorFrom(new ProfileTokenProvider(p, noSecrets).getToken(graphScope(p.endpoints)));
    assert.equal(error.code, 'ETOKEN');
    assert.match(error.hint ?? '', /not attached to the Function App.*auth\.managedIdentityClientId/);
    assert.equal(assertionGrants(app.clientId).length, 0);
  });

  it('a profile naming no managedIdentityClientId presents the token of AZURE_CLIENT_ID\'s identity (the app\'s one, as infra/ sets it)', async () => {
    const app = federatedApp();
    const doc = profileDocument(app, 'graph');
    const runtime = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { robot: { ...doc, auth: { type: 'federated' } } } }), AZURE_CLIENT_ID: app.identity }, logger: capturingLogger([]) });
    try {
      const p = runtime.profile('robot');
      await runtime.tokens(p).getToken(graphScope(p.endpoints));
    } finally {
      await runtime.close();
    }
    assert.deepEqual(assertionGrants(app.clientId).map((r) => r.outcome), ['issued']);
    assert.equal(miRequests().at(-1)?.clientId, app.identity);
  });

  it('the stand-in refuses an assertion its managed identity key did not sign, and an expired one (the checks above can fail)', async () => {
    const app = federatedApp();
    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const now = Math.floor(Date.now() / 1000);
    const jwt = (exp: number, key = stranger.privateKey) => {
      const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
      const unsigned = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iss: entra.managedIdentityIssuer, sub: entra.managedIdentityPrincipal(app.identity), aud: TOKEN_EXCHANGE_AUDIENCE, iat: now - 600, exp })}`;
      return `${unsigned}.${sign('sha256', Buffer.from(unsigned), key).toString('base64url')}`;
    };
    const grant = async (assertion: string) => {
      const response = await fetch(`${entra.url}/${TENANT}/oauth2/v2.0/token`, {
        method: 'POST',
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: app.clientId, scope: 'https://graph.microsoft.com/.default', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }),
      });
      return ((await response.json()) as { error_codes?: number[] }).error_codes?.[0];
    };
    assert.equal(await grant(jwt(now + 3600)), 50013);
    // An identity token the endpoint itself signed, but expired a minute ago.
    entra.managedIdentityTokenLifetimeSeconds = -60;
    try {
      const response = await fetch(`${entra.managedIdentityEndpoint}?resource=${encodeURIComponent(TOKEN_EXCHANGE_AUDIENCE)}&client_id=${app.identity}&api-version=2019-08-01`, { headers: { 'X-IDENTITY-HEADER': entra.identityHeader } });
      const expired = ((await response.json()) as { access_token: string }).access_token;
      assert.equal(await grant(expired), 700024);
    } finally {
      entra.managedIdentityTokenLifetimeSeconds = undefined;
    }
  });

  it('tenantId and clientId are required: the profile names the app registration', () => {
    try {
      parseProfiles({ profiles: { robot: { mailbox: MAILBOX, auth: { type: 'federated' }, send: { via: 'graph' } } } }, 'test');
      assert.fail('parsed');
    } catch (error) {
      assert.ok(isMailError(error));
      assert.deepEqual([error.code, error.profile, error.field], ['ECONFIG', 'robot', 'tenantId']);
    }
  });
});
