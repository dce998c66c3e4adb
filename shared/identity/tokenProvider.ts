import type { TokenCredential } from '@azure/core-auth';
import { untilAborted } from '../abort.js';
import type { Profile } from '../config/profiles.js';
import { exchangeScope, graphScope } from '../config/cloud.js';
import { DEFAULT_TOKEN_TIMEOUT_SECONDS } from '../config/settings.js';
import { MailError, isAuthFailure, isMailError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyRouter } from '../network/proxy.js';
import { registerSensitive } from '../redact.js';
import type { SecretStore } from '../secrets/store.js';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/index.js';
import { createProfileCredential, profileSecretNames, translateTokenError } from './credential.js';
import type { CredentialExpiryWatch } from './credentialExpiry.js';

export interface TokenRequestOptions {
  abortSignal?: AbortSignal;
}

/** Access tokens for one profile, any scope. */
export interface TokenProvider {
  getToken(scope: string, options?: TokenRequestOptions): Promise<string>;
  /** Drops cached tokens and credential and re-reads the secret: the answer to an auth failure. */
  renew(): void;
}

export interface ProfileTokenProviderOptions {
  /** A token is renewed this long before it expires. @default 300_000 */
  refreshMarginMs?: number;
  now?: () => number;
  /** Where a delegated credential reports refresh token rotation. @default console */
  logger?: Logger;
  /** Told after each token obtained, so that it checks (hourly at most) when the profile's secret or certificate expires. */
  expiry?: CredentialExpiryWatch;
  /** Where the token requests go: the profile's proxy, HTTPS_PROXY, or directly. @default directly */
  proxy?: ProxyRouter;
  /** AZURE_CLIENT_ID: the user-assigned managed identity a profile uses when it names none. @default the system-assigned one */
  defaultManagedIdentityClientId?: string;
  /** Where each token request (not a cache hit) is a `mail.token` span and counted in `mail.token.requests`. @default none */
  telemetry?: Telemetry;
  /** How long one shared token request, secret read included, may take (TOKEN_TIMEOUT_SECONDS). @default 60 s */
  requestTimeoutMs?: number;
}

/**
 * Tokens are kept until shortly before expiry, and concurrent callers share one
 * request (single-flight): a cold @azure/identity credential hit by 20 parallel
 * getToken calls makes 20 token requests, as measured for issue 3.
 */
export class ProfileTokenProvider implements TokenProvider {
  private credential?: Promise<TokenCredential>;
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly inflight = new Map<string, Promise<string>>();
  private generation = 0;
  private readonly refreshMarginMs: number;
  private readonly now: () => number;
  private readonly logger?: Logger;
  private readonly expiry?: CredentialExpiryWatch;
  private readonly proxy?: ProxyRouter;
  private readonly defaultManagedIdentityClientId?: string;
  private readonly telemetry: Telemetry;
  private readonly requestTimeoutMs: number;

  constructor(
    private readonly profile: Profile,
    private readonly secrets: SecretStore,
    options: ProfileTokenProviderOptions = {},
  ) {
    this.refreshMarginMs = options.refreshMarginMs ?? 300_000;
    this.now = options.now ?? Date.now;
    this.logger = options.logger;
    this.expiry = options.expiry;
    this.proxy = options.proxy;
    this.defaultManagedIdentityClientId = options.defaultManagedIdentityClientId;
    this.telemetry = options.telemetry ?? NO_TELEMETRY;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_TOKEN_TIMEOUT_SECONDS * 1000;
  }

  /**
   * The shared request runs under its own time limit, not under the signal of the caller that
   * happened to start it: one caller giving up must not fail the others waiting for the same
   * token, nor look like an authentication failure. A caller's signal ends its own wait only.
   */
  getToken(scope: string, options: TokenRequestOptions = {}): Promise<string> {
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt - this.refreshMarginMs > this.now()) return Promise.resolve(cached.token);
    let pending = this.inflight.get(scope);
    if (!pending) {
      const request = this.requestToken(scope, AbortSignal.timeout(this.requestTimeoutMs));
      pending = request.finally(() => {
        if (this.inflight.get(scope) === pending) this.inflight.delete(scope);
      });
      this.inflight.set(scope, pending);
    }
    return untilAborted(pending, options.abortSignal);
  }

  private requestToken(scope: string, abortSignal: AbortSignal): Promise<string> {
    const endpoints = this.profile.endpoints;
    const api = scope === graphScope(endpoints) ? 'graph' : scope === exchangeScope(endpoints) ? 'exchange' : 'other';
    const attributes = { 'mail.profile': this.profile.name, 'mail.auth': this.profile.auth.type, 'mail.api': api };
    return this.telemetry.span('mail.token', attributes, async (span) => {
      try {
        const token = await this.fetchToken(scope, abortSignal);
        span.set({ 'mail.outcome': 'issued' });
        this.telemetry.count('mail.token.requests', { ...attributes, 'mail.outcome': 'issued' });
        return token;
      } catch (error) {
        this.telemetry.count('mail.token.requests', { ...attributes, 'mail.outcome': 'refused', 'error.type': isMailError(error) ? error.code : 'EINTERNAL' });
        throw error;
      }
    });
  }

  private async fetchToken(scope: string, abortSignal: AbortSignal): Promise<string> {
    const generation = this.generation;
    try {
      this.credential ??= createProfileCredential(this.profile, this.secrets, { abortSignal, logger: this.logger, proxy: this.proxy, defaultManagedIdentityClientId: this.defaultManagedIdentityClientId });
      // The limit is enforced here: @azure/identity takes the signal but MSAL's own request (and its
      // retry after a 5xx) does not stop for it, so a held token endpoint would hold every caller.
      const credential = await untilAborted(this.credential, abortSignal);
      const result = await untilAborted(credential.getToken(scope, { abortSignal }), abortSignal);
      if (!result) throw new Error('the credential returned no token');
      registerSensitive(result.token, { expiresAt: result.expiresOnTimestamp });
      if (generation === this.generation) this.tokens.set(scope, { token: result.token, expiresAt: result.expiresOnTimestamp });
      // Not awaited: the read is served by the secret cache the credential was just built from, and it never fails a send.
      void this.expiry?.observe(this.profile, this.secrets);
      return result.token;
    } catch (error) {
      if (generation === this.generation) this.credential = undefined;
      if (abortSignal.aborted) {
        const seconds = Math.round(this.requestTimeoutMs / 100) / 10;
        throw new MailError('ETOKEN', `profile "${this.profile.name}": the token request got no answer within ${seconds} s (TOKEN_TIMEOUT_SECONDS)`, {
          profile: this.profile.name,
          hint: 'Entra (or Key Vault, for the secret) did not answer in time; what waited for the token is retried. If it persists, check the network path to the authority endpoint and any proxy.',
          cause: error,
        });
      }
      throw translateTokenError(this.profile, error, this.proxy);
    }
  }

  renew(): void {
    this.generation++;
    this.tokens.clear();
    this.inflight.clear();
    this.credential = undefined;
    for (const secret of profileSecretNames(this.profile)) this.secrets.invalidate?.(secret);
  }
}

/**
 * Runs an operation that uses the profile's token; after an authentication failure the
 * secret is re-read and the operation tried once more, so a rotated secret is picked up
 * without a restart.
 */
export async function withAuthRetry<T>(tokens: TokenProvider, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    if (!isAuthFailure(error)) throw error;
    tokens.renew();
    return operation();
  }
}
