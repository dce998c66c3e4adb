import type { AccessToken, GetTokenOptions, TokenCredential } from '@azure/core-auth';
import type { AccountInfo, ConfidentialClientApplication, PublicClientApplication } from '@azure/msal-node';
import { isKnownAuthority } from '../config/cloud.js';
import type { Profile } from '../config/profiles.js';
import type { DelegatedAuthConfig } from '../config/schema.js';
import { MailError } from '../errors.js';
import type { Logger } from '../log.js';
import { msalNetworkClient } from '../network/msalNetworkClient.js';
import { urlTarget, type ProxyRouter } from '../network/proxy.js';
import { proxyMailError } from '../network/proxyErrors.js';
import { registerSensitive } from '../redact.js';
import type { SecretStore } from '../secrets/store.js';

type Msal = typeof import('@azure/msal-node');

/** Loaded when a delegated profile first needs it; @azure/identity pulls in the same package. */
function msalSdk(): Msal {
  return require('@azure/msal-node') as Msal;
}

export type DelegatedProfile = Profile & { auth: DelegatedAuthConfig };
export type DelegatedApplication = ConfidentialClientApplication | PublicClientApplication;

export function isDelegated(profile: Profile): profile is DelegatedProfile {
  return profile.auth.type === 'delegated';
}

/** The profile as a delegated one, or ECONSENT saying why consent does not apply to it. */
export function requireDelegated(profile: Profile): DelegatedProfile {
  if (isDelegated(profile)) return profile;
  throw new MailError('ECONSENT', `profile "${profile.name}" uses auth type "${profile.auth.type}", which needs no user consent`, {
    profile: profile.name,
    field: 'auth.type',
    hint: 'Consent applies to profiles with auth type "delegated" only; app-only modes are consented by an admin under API permissions.',
  });
}

function resourceOf(scope: string): string {
  return new URL(scope).origin;
}

/**
 * Scopes for one token request. The transports ask for `<resource>/.default`, which with a
 * user's refresh token yields every permission the user consented to on that resource; when
 * `auth.scopes` names permissions of that resource, those are asked for instead. MSAL adds
 * openid, profile and offline_access itself. One resource per request: Entra refuses more
 * (AADSTS28000).
 */
export function tokenScopes(profile: DelegatedProfile, scope: string): string[] {
  const resource = resourceOf(scope);
  const configured = profile.auth.scopes?.filter((s) => resourceOf(s) === resource) ?? [];
  return configured.length > 0 ? configured : [scope];
}

/**
 * One MSAL application for a delegated profile: confidential with the client secret from the
 * store, or public when the profile names none. MSAL's instance discovery asks the public
 * cloud about the authority; an authority it does not know is declared known instead.
 */
export async function createDelegatedApplication(profile: DelegatedProfile, secrets: SecretStore, signal?: AbortSignal, proxy?: ProxyRouter): Promise<DelegatedApplication> {
  const msal = msalSdk();
  const authority = profile.endpoints.authority;
  const auth = {
    clientId: profile.clientId!,
    authority: `${authority}/${profile.tenantId!}`,
    knownAuthorities: isKnownAuthority(authority) ? [] : [new URL(authority).host],
  };
  const networkClient = msalNetworkClient(proxy);
  const system = { loggerOptions: { piiLoggingEnabled: false, logLevel: msal.LogLevel.Error, loggerCallback: () => {} }, ...(networkClient && { networkClient }) };
  if (profile.auth.secret === undefined) return new msal.PublicClientApplication({ auth, system });
  const clientSecret = await secrets.getSecret(profile.auth.secret, { abortSignal: signal });
  return new msal.ConfidentialClientApplication({ auth: { ...auth, clientSecret }, system });
}

interface SerializedRefreshToken {
  secret?: string;
  home_account_id?: string;
}

/**
 * The refresh token of the last answer for this account, taken out of MSAL's cache, which is
 * then emptied for the account. MSAL never returns refresh tokens to the caller; its FAQ
 * points to the cache (lib/msal-node/docs/faq.md, "How do I get the refresh token?").
 * Undefined when the answer carried none (Entra may keep a confidential client's token).
 */
export async function takeRefreshToken(app: DelegatedApplication, account: AccountInfo | null): Promise<string | undefined> {
  if (!account) return undefined;
  const cache = app.getTokenCache();
  const entries = (JSON.parse(cache.serialize()) as { RefreshToken?: Record<string, SerializedRefreshToken> }).RefreshToken ?? {};
  const token = Object.values(entries).find((e) => e.home_account_id === account.homeAccountId)?.secret;
  await cache.removeAccount(account);
  return token;
}

/** Entra's answers that mean the stored refresh token is dead and only a new consent helps. */
const DEAD_GRANT = /invalid_grant|AADSTS(70000|700082|50173|50076|50079|65001|9002313)\b/;

/** The error for a token request the stored grant cannot serve: ETOKEN, with the way out. */
export function consentError(profile: DelegatedProfile, error: unknown, proxy?: ProxyRouter): MailError {
  const authority = urlTarget(profile.endpoints.authority);
  const context = { server: proxy?.isDirect(authority) === false ? proxy.server : undefined, target: authority, profile: profile.name };
  const noted = proxy?.takeFailure();
  const proxied = proxyMailError(error, context) ?? (noted && proxyMailError(noted, context));
  if (proxied) return proxied;
  const message = error instanceof Error ? error.message : String(error);
  const firstLine = message.split('\n')[0] ?? message;
  const dead = DEAD_GRANT.test(message);
  return new MailError('ETOKEN', `profile "${profile.name}": the refresh token was refused: ${firstLine}`, {
    profile: profile.name,
    providerCode: /AADSTS\d+/.exec(message)?.[0],
    hint: dead
      ? `The user's grant has expired, was revoked or lacks consent: re-run consent: GET /api/connect/${profile.name}`
      : 'Check tenantId, clientId, the client secret and the authority endpoint of this profile.',
    cause: error,
  });
}

export interface RefreshTokenCredentialOptions {
  logger: Logger;
  /** Where the token requests go. @default directly */
  proxy?: ProxyRouter;
}

/**
 * A TokenCredential over a user's refresh token, so ProfileTokenProvider's caching and
 * single-flight work as for the app-only modes. Entra may answer a refresh with a new refresh
 * token and invalidate the one used (always for single-page apps, at its discretion for web
 * apps: https://learn.microsoft.com/entra/identity-platform/refresh-tokens); the new one is
 * written back to the secret store at once, since nodemailer-style clients that only keep it
 * in memory lose the mailbox at the next restart. Requests run one at a time, each with the
 * newest token: two in parallel would both present the same token, and one would be refused.
 */
export class RefreshTokenCredential implements TokenCredential {
  private queue: Promise<unknown> = Promise.resolve();
  private current?: string;
  private app?: Promise<DelegatedApplication>;

  constructor(
    private readonly profile: DelegatedProfile,
    private readonly secrets: SecretStore,
    private readonly options: RefreshTokenCredentialOptions,
  ) {}

  getToken(scopes: string | string[], options: GetTokenOptions = {}): Promise<AccessToken> {
    const scope = Array.isArray(scopes) ? scopes[0] : scopes;
    if (scope === undefined) return Promise.reject(new MailError('ETOKEN', `profile "${this.profile.name}": no scope requested`, { profile: this.profile.name }));
    // core-auth types the signal as AbortSignalLike; what ProfileTokenProvider passes is a real one.
    const signal = options.abortSignal instanceof AbortSignal ? options.abortSignal : undefined;
    const run = this.queue.then(() => this.redeem(scope, signal));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async redeem(scope: string, signal: AbortSignal | undefined): Promise<AccessToken> {
    const auth = this.profile.auth;
    const refreshToken = this.current ?? (await this.secrets.getSecret(auth.refreshToken, { abortSignal: signal }));
    registerSensitive(refreshToken);
    this.app ??= createDelegatedApplication(this.profile, this.secrets, signal, this.options.proxy);
    const app = await this.app;
    let result;
    try {
      // forceCache: without an account already in its cache MSAL would drop the answer, refresh token included.
      result = await app.acquireTokenByRefreshToken({ scopes: tokenScopes(this.profile, scope), refreshToken, forceCache: true });
    } catch (error) {
      throw consentError(this.profile, error, this.options.proxy);
    }
    if (!result) throw consentError(this.profile, new Error('no token in the answer'));
    const expiresOnTimestamp = (result.expiresOn ?? new Date()).getTime();
    registerSensitive(result.accessToken, { expiresAt: expiresOnTimestamp });
    const next = await takeRefreshToken(app, result.account);
    if (next !== undefined && next !== refreshToken) {
      registerSensitive(next);
      // This process never presents the replaced token again.
      registerSensitive(refreshToken, { expiresAt: Date.now() });
      this.current = next;
      await this.persist(next, signal);
    } else {
      this.current = refreshToken;
    }
    return { token: result.accessToken, expiresOnTimestamp };
  }

  /**
   * A failed write is logged, not thrown: the token request succeeded, and this process keeps
   * the new refresh token; only a restart before the next successful write needs a new consent.
   */
  private async persist(token: string, signal: AbortSignal | undefined): Promise<void> {
    const logger = this.options.logger;
    try {
      await storeRefreshToken(this.profile, this.secrets, token, { logger, operation: 'refreshToken.rotate', abortSignal: signal });
    } catch (error) {
      const mail = error instanceof MailError ? error : undefined;
      logger.error({
        operation: 'refreshToken.rotate',
        profile: this.profile.name,
        secret: this.profile.auth.refreshToken,
        outcome: 'error',
        code: mail?.code ?? 'ESECRET_ACCESS',
        hint: `${mail?.hint ?? 'Writing the rotated refresh token failed.'} This process keeps the new token in memory; after a restart, re-run consent.`,
      });
    }
  }
}

export interface StoreRefreshTokenOptions {
  logger: Logger;
  operation: string;
  abortSignal?: AbortSignal;
}

/**
 * Writes a profile's refresh token to the secret store. The environment store cannot persist
 * (app settings are read-only from inside the app): the token then lives in this process only,
 * and a warning says so. Returns whether it was persisted.
 */
export async function storeRefreshToken(profile: DelegatedProfile, secrets: SecretStore, token: string, options: StoreRefreshTokenOptions): Promise<boolean> {
  const name = profile.auth.refreshToken;
  if (!secrets.setSecret) {
    throw new MailError('ESECRET_ACCESS', `the ${secrets.kind} secret store cannot store "${name}"`, { profile: profile.name, field: name, hint: 'Set KEY_VAULT_URL so that refresh tokens are kept in Key Vault.' });
  }
  const { persisted } = await secrets.setSecret(name, token, { abortSignal: options.abortSignal });
  const event = { operation: options.operation, profile: profile.name, secret: name };
  if (persisted) options.logger.info({ ...event, outcome: 'ok' });
  else {
    options.logger.warn({
      ...event,
      outcome: 'skipped',
      hint: `The ${secrets.kind} secret store cannot persist "${name}": the refresh token is kept in this process's memory and lost when it restarts (then re-run consent). Set KEY_VAULT_URL to keep it in Key Vault.`,
    });
  }
  return persisted;
}
