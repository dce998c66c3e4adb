import type { AccountInfo } from '@azure/msal-node';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Cookie } from '@azure/functions';
import { MailError } from '../errors.js';
import { consentScopes } from './scopes.js';
import { type DelegatedProfile, consentError, createDelegatedApplication, requireDelegated, storeRefreshToken, takeRefreshToken } from '../identity/delegated.js';
import { registerSensitive } from '../redact.js';
import type { MailRuntime } from '../runtime.js';
import { CONSENT_TTL_MS, consentStateKey, openConsentState, sealConsentState } from './consentState.js';

/** The cookie that carries the sealed consent state from connect to the callback. */
export const CONSENT_COOKIE = 'm365mail_consent';
const CALLBACK_PATH = '/api/oauth/callback';

/**
 * The redirect URI registered on the app: OAUTH_REDIRECT_URI. Only for a local `func start`
 * (a request to localhost, which Entra allows over http) is it derived from the request: on any
 * other host the Host header is the caller's to choose, and a code must never be sent where a
 * request said.
 */
export function consentRedirectUri(setting: string | undefined, requestUrl: string): string {
  if (setting) return setting;
  const url = new URL(requestUrl);
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (!local) {
    throw new MailError('ECONFIG', 'OAUTH_REDIRECT_URI is not set: outside local development the redirect URI is not taken from the request', {
      field: 'OAUTH_REDIRECT_URI',
      hint: `Set OAUTH_REDIRECT_URI to https://<your function app host>${CALLBACK_PATH}, the redirect URI registered on the app (Authentication > Web).`,
    });
  }
  return `${url.protocol}//${url.host}${CALLBACK_PATH}`;
}

/**
 * The account that signed in must be the one the profile acts as: its mailbox, or `auth.user`,
 * and of the profile's tenant when that is given as an id. Anyone can finish a sign-in at the
 * authority; without this, whoever did would have the profile act as them. Nothing is stored
 * on a mismatch.
 */
function checkSignedInAccount(profile: DelegatedProfile, account: AccountInfo | null): void {
  const expected = (profile.auth.user ?? profile.mailbox).toLowerCase();
  const signedIn = account?.username?.toLowerCase();
  const again = `Sign in as ${expected} at GET /api/connect/${profile.name}${profile.auth.user === undefined ? ', or set auth.user when the mailbox is reached through another account' : ''}.`;
  if (signedIn !== expected) {
    throw new MailError('ECONSENT', `profile "${profile.name}" acts as ${expected}, but ${signedIn ?? 'an unknown account'} signed in: nothing was stored`, { profile: profile.name, field: 'auth.user', hint: again });
  }
  // A personal account's ID token names the consumers tenant by its id; a work account signing in to a personal profile does not.
  const tenant = profile.endpoints.personal ? PERSONAL_ACCOUNTS_TENANT_ID : profile.tenantId?.toLowerCase();
  if (tenant !== undefined && /^[0-9a-f-]{36}$/.test(tenant) && account?.tenantId !== undefined && account.tenantId.toLowerCase() !== tenant) {
    throw new MailError('ECONSENT', `profile "${profile.name}" is in tenant ${tenant}, but the account that signed in is of tenant ${account.tenantId}: nothing was stored`, { profile: profile.name, field: 'tenantId', hint: again });
  }
}

/** The tenant id Entra gives every personal Microsoft account (the `tid` of their tokens). */
const PERSONAL_ACCOUNTS_TENANT_ID = '9188040d-6c67-4c5b-b112-36a304b66dad';

export interface ConsentStart {
  /** The authority's /authorize URL the browser is sent to. */
  location: string;
  cookie: Cookie;
}

/**
 * First leg of the authorization code flow with PKCE (S256) for a delegated profile: the
 * authorize URL from MSAL, and the sealed state the callback needs.
 */
export async function startConsent(runtime: MailRuntime, profileName: string, options: { requestUrl: string; now?: number }): Promise<ConsentStart> {
  const profile = requireDelegated(runtime.profile(profileName));
  const key = consentStateKey(runtime.settings.oauthStateKey);
  const redirectUri = consentRedirectUri(runtime.settings.oauthRedirectUri, options.requestUrl);
  // A fresh application per consent: consent is rare, and this reads the current client secret.
  const app = await createDelegatedApplication(profile, runtime.secrets, undefined, runtime.proxy(profile));
  const { CryptoProvider } = require('@azure/msal-node') as typeof import('@azure/msal-node');
  const { verifier, challenge } = await new CryptoProvider().generatePkceCodes();
  const state = randomBytes(32).toString('base64url');
  const nonce = randomBytes(16).toString('base64url');
  const location = await app.getAuthCodeUrl({
    scopes: consentScopes(profile),
    redirectUri,
    state,
    nonce,
    codeChallenge: challenge,
    codeChallengeMethod: 'S256',
    loginHint: profile.auth.user ?? profile.mailbox,
  });
  const now = options.now ?? Date.now();
  const sealed = sealConsentState({ v: 1, profile: profile.name, state, nonce, verifier, redirectUri, exp: now + CONSENT_TTL_MS }, key);
  return {
    location,
    cookie: { name: CONSENT_COOKIE, value: sealed, path: new URL(redirectUri).pathname, httpOnly: true, secure: true, sameSite: 'Lax', maxAge: CONSENT_TTL_MS / 1000 },
  };
}

export interface ConsentResult {
  profile: string;
  mailbox: string;
  /** The signed-in user's name (UPN) from the ID token. */
  account: string;
  /** Where the refresh token went. */
  secretName: string;
  /** False with the environment store: the token lives in this process only. */
  persisted: boolean;
}

function cookieValue(header: string | null | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Second leg: checks the browser's sealed state against the returned state, redeems the code
 * with the PKCE verifier, and stores the refresh token under the profile's `auth.refreshToken`.
 * The running process's tokens for the profile are dropped so the new grant is used at once.
 */
export async function completeConsent(runtime: MailRuntime, options: { requestUrl: string; cookieHeader?: string | null; now?: number }): Promise<ConsentResult> {
  const query = new URL(options.requestUrl).searchParams;
  const sealed = cookieValue(options.cookieHeader, CONSENT_COOKIE);
  if (!sealed) {
    throw new MailError('ECONSENT', 'no consent was started in this browser (the consent cookie is missing)', {
      hint: 'Open GET /api/connect/{profile} in this browser and finish the sign-in within 10 minutes; cookies must be allowed.',
    });
  }
  const expected = openConsentState(sealed, consentStateKey(runtime.settings.oauthStateKey), options.now);
  const again = `Start again at GET /api/connect/${expected.profile}.`;
  if (!sameText(query.get('state') ?? '', expected.state)) {
    throw new MailError('ECONSENT', 'the state returned by the sign-in does not match the one this browser started with', { profile: expected.profile, hint: again });
  }
  const error = query.get('error');
  if (error) {
    const declined = error === 'access_denied';
    throw new MailError('ECONSENT', `${declined ? 'consent was declined' : 'the sign-in failed'} (${error}): ${(query.get('error_description') ?? '').split(/\r?\n/)[0]}`, {
      profile: expected.profile,
      providerCode: /AADSTS\d+/.exec(query.get('error_description') ?? '')?.[0],
      hint: declined ? `The user (or an admin policy) refused the permissions. ${again}` : again,
    });
  }
  const code = query.get('code');
  if (!code) throw new MailError('ECONSENT', 'the sign-in returned neither a code nor an error', { profile: expected.profile, hint: again });
  // Presented once, just below.
  registerSensitive(code, { expiresAt: Date.now() });

  const profile = requireDelegated(runtime.profile(expected.profile));
  const app = await createDelegatedApplication(profile, runtime.secrets, undefined, runtime.proxy(profile));
  const scopes = consentScopes(profile);
  let result;
  try {
    // The token endpoint answers for one resource at a time (AADSTS28000); the refresh token covers all consented ones.
    const resource = new URL(scopes[0]!).origin;
    result = await app.acquireTokenByCode({
      code,
      redirectUri: expected.redirectUri,
      scopes: scopes.filter((s) => new URL(s).origin === resource),
      codeVerifier: expected.verifier,
      nonce: expected.nonce,
    });
  } catch (redeemError) {
    throw consentError(profile, redeemError, runtime.proxy(profile));
  }
  registerSensitive(result.accessToken, { expiresAt: result.expiresOn?.getTime() ?? Date.now() });
  checkSignedInAccount(profile, result.account);
  const refreshToken = await takeRefreshToken(app, result.account);
  if (!refreshToken) {
    throw new MailError('ETOKEN', `profile "${profile.name}": the sign-in returned no refresh token`, {
      profile: profile.name,
      hint: 'The app must be allowed offline_access (Microsoft Graph > offline_access, delegated) and the user must consent to it.',
    });
  }
  registerSensitive(refreshToken);
  const persisted = await storeRefreshToken(profile, runtime.secrets, refreshToken, { logger: runtime.logger, operation: 'consent' });
  runtime.tokens(profile).renew();
  return { profile: profile.name, mailbox: profile.mailbox, account: result.account?.username ?? '', secretName: profile.auth.refreshToken, persisted };
}
