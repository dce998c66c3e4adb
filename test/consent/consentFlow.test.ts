import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRequest, InvocationContext, type Cookie, type HttpResponseInit } from '@azure/functions';
import { connect } from '../../functions/connect.js';
import { oauthCallback } from '../../functions/oauthCallback.js';
import { send } from '../../functions/send.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { DelegatedHarness, TENANT } from '../support/delegatedHarness.js';
import { capturingLogger } from '../support/receiveHarness.js';

const HOST = 'mail-fn.example.net';
const CALLBACK = `https://${HOST}/api/oauth/callback`;
const USER = 'support@contoso.com';
const CLIENT_ID = 'helpdesk-delegated';
const CLIENT_SECRET = 'helpdesk-delegated-client-secret';
const STATE_KEY = 'a-test-state-key-of-at-least-32-characters';

function invocation(logs: string[]): InvocationContext {
  return new InvocationContext({ invocationId: `inv-${Math.random().toString(36).slice(2)}`, functionName: 'consent', logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) });
}

function get(url: string, headers: Record<string, string> = {}, params: Record<string, string> = {}): HttpRequest {
  return new HttpRequest({ method: 'GET', url, headers, params });
}

function header(response: HttpResponseInit, name: string): string | undefined {
  const headers = (response.headers ?? {}) as Record<string, string>;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers[key];
}

describe('delegated consent: GET /api/connect/{profile} and GET /api/oauth/callback (authorization code + PKCE, real MSAL)', () => {
  const harness = new DelegatedHarness();
  const { entra, vault } = harness;
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [USER] });
  const logs: string[] = [];
  let runtime: MailRuntime;

  before(async () => {
    await harness.start();
    await smtp.start();
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: CLIENT_SECRET, redirectUris: [CALLBACK] });
    vault.setSecret('helpdesk-client-secret', CLIENT_SECRET);
  });
  after(async () => {
    await smtp.stop();
    await harness.stop();
  });

  function useRuntime(settings: Record<string, string> = {}): void {
    runtime = new MailRuntime({
      env: {
        ...harness.vaultSettings,
        OAUTH_STATE_KEY: STATE_KEY,
        OAUTH_REDIRECT_URI: CALLBACK,
        MAIL_PROFILES: JSON.stringify({ profiles: {
          helpdesk: {
            mailbox: USER, tenantId: TENANT, clientId: CLIENT_ID,
            auth: { type: 'delegated', secret: 'helpdesk-client-secret', refreshToken: 'helpdesk-refresh-token' },
            send: { via: 'smtp' },
            endpoints: { authority: entra.url, smtp: smtp.endpoint },
          },
          appOnly: {
            mailbox: 'robot@contoso.com', tenantId: TENANT, clientId: 'robot-app',
            auth: { type: 'clientSecret', secret: 'robot-secret' },
            send: { via: 'smtp' },
            endpoints: { authority: entra.url, smtp: smtp.endpoint },
          },
        } }),
        ...settings,
      },
      logger: capturingLogger(logs),
    });
    setRuntime(runtime);
  }
  beforeEach(() => {
    entra.consent = { upn: USER };
    useRuntime();
  });
  afterEach(async () => {
    await runtime.close();
    setRuntime(undefined);
  });

  /** Connect, then the browser leg at the loopback authority: the Location it redirects back to, and the consent cookie. */
  async function signIn(profile = 'helpdesk'): Promise<{ connectResponse: HttpResponseInit; authorizeUrl: URL; callbackUrl: string; cookie: Cookie }> {
    const connectResponse = await connect(get(`https://${HOST}/api/connect/${profile}`, {}, { profile }), invocation(logs));
    assert.equal(connectResponse.status, 302, String(connectResponse.body));
    const authorizeUrl = new URL(header(connectResponse, 'Location')!);
    const cookie = connectResponse.cookies?.[0];
    assert.ok(cookie);
    const browser = await fetch(authorizeUrl, { redirect: 'manual' });
    assert.equal(browser.status, 302, await browser.text());
    return { connectResponse, authorizeUrl, callbackUrl: browser.headers.get('location')!, cookie };
  }

  const callback = (url: string, cookie?: Cookie) => oauthCallback(get(url, cookie ? { cookie: `other=1; ${cookie.name}=${cookie.value}` } : {}), invocation(logs));
  const codeRedemptions = () => entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID && r.grant === 'authorization_code');

  it('connect redirects to the authority\'s /authorize with code flow, PKCE S256, the profile\'s scopes plus offline_access, and a sealed state cookie', async () => {
    const { authorizeUrl, cookie } = await signIn();
    assert.equal(`${authorizeUrl.origin}${authorizeUrl.pathname}`, `${entra.url}/${TENANT}/oauth2/v2.0/authorize`);
    const q = authorizeUrl.searchParams;
    assert.equal(q.get('client_id'), CLIENT_ID);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('redirect_uri'), CALLBACK, 'the redirect URI is OAUTH_REDIRECT_URI');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.equal(q.get('login_hint'), USER);
    assert.deepEqual(new Set(q.get('scope')?.split(' ')), new Set(['https://outlook.office365.com/SMTP.Send', 'openid', 'profile', 'offline_access']));
    assert.ok((q.get('state') ?? '').length >= 32);
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Lax');
    assert.equal(cookie.path, '/api/oauth/callback');
    assert.doesNotMatch(cookie.value, new RegExp(q.get('state')!), 'the state is sealed, not in clear');
  });

  it('the round trip stores the refresh token in Key Vault, answers "connected as" the user, and the profile then sends over SMTP as that user', async () => {
    const writesBefore = harness.writes('helpdesk-refresh-token');
    const { callbackUrl, cookie, connectResponse } = await signIn();
    const response = await callback(callbackUrl, cookie);

    assert.equal(response.status, 200, String(response.body));
    assert.match(String(response.body), new RegExp(`now acts as ${USER}`));
    assert.match(String(response.body), /stored in Key Vault as "helpdesk-refresh-token"/);
    assert.equal(header(response, 'Cache-Control'), 'no-store');
    assert.equal(response.cookies?.[0]?.maxAge, 0, 'the consent cookie is cleared');
    assert.deepEqual(codeRedemptions().map((r) => r.outcome).slice(-1), ['issued']);
    assert.equal(harness.writes('helpdesk-refresh-token') - writesBefore, 1);
    const stored = await harness.vaultStore().getSecret('helpdesk-refresh-token');
    assert.equal(entra.refreshTokens.get(stored)?.upn, USER);
    assert.deepEqual(entra.refreshTokens.get(stored)?.scopes, ['https://outlook.office365.com/SMTP.Send']);

    const sent = await send(new HttpRequest({
      method: 'POST', url: `https://${HOST}/api/send`, headers: { 'content-type': 'application/json' },
      body: { string: JSON.stringify({ profile: 'helpdesk', to: 'customer@example.com', subject: 'Your ticket', text: 'Resolved.' }) },
    }), invocation(logs));
    assert.equal(sent.status, 200, String(sent.body));
    const attempt = smtp.authAttempts.at(-1);
    assert.deepEqual([attempt?.method, attempt?.user, attempt?.accepted], ['XOAUTH2', USER, true]);
    assert.equal(smtp.messages.at(-1)?.envelope.from, USER);

    // Nothing secret in what the browser or the logs saw: no code, refresh or access token.
    const secrets = [new URL(callbackUrl).searchParams.get('code')!, ...entra.refreshTokens.keys(), ...[...entra.issued.values()].filter((t) => t.via === 'delegated').map((t) => t.token)];
    const visible = [String(response.body), String(connectResponse.body ?? ''), header(connectResponse, 'Location')!, ...logs];
    for (const secret of secrets) for (const text of visible) assert.ok(!text.includes(secret), `a secret reached: ${text.slice(0, 120)}`);
  });

  it('someone else signing in (mallory instead of the mailbox) is ECONSENT 400 naming both, and nothing is stored', async () => {
    entra.consent = { upn: 'mallory@contoso.com' };
    const writes = harness.writes('helpdesk-refresh-token');
    const { callbackUrl, cookie } = await signIn();
    const response = await callback(callbackUrl, cookie);
    assert.equal(response.status, 400, String(response.body));
    assert.match(String(response.body), new RegExp(`acts as ${USER}, but mallory@contoso.com signed in: nothing was stored`));
    assert.match(String(response.body), /or set auth\.user/);
    assert.equal(harness.writes('helpdesk-refresh-token'), writes, 'no refresh token was written');
    assert.equal(header(response, 'X-Content-Type-Options'), 'nosniff');
    assert.match(header(response, 'Content-Security-Policy') ?? '', /default-src 'none'/);
  });

  it('a personal profile (tenantId consumers) binds a personal account, and refuses a work account in its place', async () => {
    const profiles = JSON.parse(runtime.env.MAIL_PROFILES!) as { profiles: Record<string, Record<string, unknown>> };
    profiles.profiles.jane = { ...profiles.profiles.helpdesk, mailbox: 'jane.doe@outlook.com', tenantId: 'consumers', clientId: 'jane-personal-app', auth: { type: 'delegated', secret: 'helpdesk-client-secret', refreshToken: 'jane-refresh-token' } };
    await runtime.close();
    useRuntime({ MAIL_PROFILES: JSON.stringify(profiles) });
    entra.register({ tenantId: 'consumers', clientId: 'jane-personal-app', secret: CLIENT_SECRET, redirectUris: [CALLBACK] });
    entra.consent = { upn: 'jane.doe@outlook.com' };
    const personal = await signIn('jane');
    assert.match(personal.authorizeUrl.pathname, /^\/consumers\/oauth2\/v2\.0\/authorize$/);
    const ok = await callback(personal.callbackUrl, personal.cookie);
    assert.equal(ok.status, 200, String(ok.body));
    assert.equal(harness.writes('jane-refresh-token'), 1);
    const workTenant = entra.consumersTenantId;
    entra.consumersTenantId = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    try {
      const work = await signIn('jane');
      const refused = await callback(work.callbackUrl, work.cookie);
      assert.equal(refused.status, 400, String(refused.body));
      assert.match(String(refused.body), /72f988bf-86f1-41af-91ab-2d7cd011db47/);
      assert.equal(harness.writes('jane-refresh-token'), 1, 'nothing more was stored');
    } finally {
      entra.consumersTenantId = workTenant;
    }
  });

  it('auth.user names the account that signs in for the mailbox (a shared mailbox reached through a user)', async () => {
    const profiles = JSON.parse(runtime.env.MAIL_PROFILES!) as { profiles: Record<string, { auth: Record<string, unknown> }> };
    profiles.profiles.helpdesk!.auth.user = 'agent@contoso.com';
    await runtime.close();
    useRuntime({ MAIL_PROFILES: JSON.stringify(profiles) });
    entra.consent = { upn: 'agent@contoso.com' };
    const { callbackUrl, cookie, authorizeUrl } = await signIn();
    assert.equal(authorizeUrl.searchParams.get('login_hint'), 'agent@contoso.com');
    const response = await callback(callbackUrl, cookie);
    assert.equal(response.status, 200, String(response.body));
    assert.match(String(response.body), /now acts as agent@contoso\.com/);
  });

  it('a tampered state is refused with 400 before the code is redeemed, and nothing is stored', async () => {
    const { callbackUrl, cookie } = await signIn();
    const redemptions = codeRedemptions().length;
    const writes = harness.writes('helpdesk-refresh-token');
    const tampered = new URL(callbackUrl);
    tampered.searchParams.set('state', `${tampered.searchParams.get('state')!.slice(0, -2)}xx`);

    const response = await callback(tampered.toString(), cookie);
    assert.equal(response.status, 400);
    assert.match(String(response.body), /state returned by the sign-in does not match/);
    assert.match(String(response.body), /Start again at GET \/api\/connect\/helpdesk/);
    assert.equal(codeRedemptions().length, redemptions);
    assert.equal(harness.writes('helpdesk-refresh-token'), writes);
  });

  it('a callback without the consent cookie (another browser) or with an altered one is refused with 400', async () => {
    const { callbackUrl, cookie } = await signIn();
    const missing = await callback(callbackUrl);
    assert.equal(missing.status, 400);
    assert.match(String(missing.body), /no consent was started in this browser/);

    const altered = { ...cookie, value: `${cookie.value.slice(0, 20)}${cookie.value[20] === 'A' ? 'B' : 'A'}${cookie.value.slice(21)}` };
    const response = await callback(callbackUrl, altered);
    assert.equal(response.status, 400);
    assert.match(String(response.body), /not authentic/);
  });

  it('a user who declines consent gets 400 saying so, with the authority\'s code', async () => {
    entra.consent = { error: 'access_denied' };
    const { callbackUrl, cookie } = await signIn();
    const response = await callback(callbackUrl, cookie);
    assert.equal(response.status, 400);
    assert.match(String(response.body), /consent was declined \(access_denied\): AADSTS65004/);
  });

  it('a code can be redeemed once: replaying the callback is refused', async () => {
    const { callbackUrl, cookie } = await signIn();
    assert.equal((await callback(callbackUrl, cookie)).status, 200);
    const replay = await callback(callbackUrl, cookie);
    assert.equal(replay.status, 502);
    assert.match(String(replay.body), /AADSTS54005/);
  });

  it('without OAUTH_REDIRECT_URI the redirect URI is taken from the request only on localhost; on any other host connect is ECONFIG naming the setting and redirects nowhere', async () => {
    useRuntime({ OAUTH_REDIRECT_URI: '' });
    const remote = await connect(get(`https://${HOST}/api/connect/helpdesk`, {}, { profile: 'helpdesk' }), invocation(logs));
    assert.equal(remote.status, 500);
    assert.equal(JSON.parse(String(remote.body)).field, 'OAUTH_REDIRECT_URI');
    assert.equal(header(remote, 'Location'), undefined);
    const local = await connect(get('http://localhost:7071/api/connect/helpdesk', {}, { profile: 'helpdesk' }), invocation(logs));
    assert.equal(new URL(header(local, 'Location')!).searchParams.get('redirect_uri'), 'http://localhost:7071/api/oauth/callback');
  });

  it('OAUTH_REDIRECT_URI, when set, is the redirect URI instead of the request host', async () => {
    useRuntime({ OAUTH_REDIRECT_URI: 'https://mail.contoso.com/api/oauth/callback' });
    const response = await connect(get(`https://${HOST}/api/connect/helpdesk`, {}, { profile: 'helpdesk' }), invocation(logs));
    assert.equal(new URL(header(response, 'Location')!).searchParams.get('redirect_uri'), 'https://mail.contoso.com/api/oauth/callback');
  });

  it('connect answers 404 for an unknown profile, 400 for an app-only profile, and 500 naming OAUTH_STATE_KEY when it is missing', async () => {
    const unknown = await connect(get(`https://${HOST}/api/connect/nobody`, {}, { profile: 'nobody' }), invocation(logs));
    assert.equal(unknown.status, 404);
    const appOnly = await connect(get(`https://${HOST}/api/connect/appOnly`, {}, { profile: 'appOnly' }), invocation(logs));
    assert.equal(appOnly.status, 400);
    assert.equal(JSON.parse(String(appOnly.body)).code, 'ECONSENT');
    useRuntime({ OAUTH_STATE_KEY: '' });
    const noKey = await connect(get(`https://${HOST}/api/connect/helpdesk`, {}, { profile: 'helpdesk' }), invocation(logs));
    assert.equal(noKey.status, 500);
    assert.equal(JSON.parse(String(noKey.body)).field, 'OAUTH_STATE_KEY');
  });
});
