import type { TokenCredential } from '@azure/core-auth';
import type { ClientAssertionCredentialOptions } from '@azure/identity';
import { tokenExchangeScope } from '../config/cloud.js';
import type { Profile } from '../config/profiles.js';
import type { AuthConfig } from '../config/schema.js';
import { registerSensitive } from '../redact.js';

type FederatedAuthConfig = Extract<AuthConfig, { type: 'federated' }>;

/** An identity token is asked for again this long before it expires, as access tokens are (tokenProvider.ts). */
const REFRESH_MARGIN_MS = 300_000;

/** How long one request to the managed identity endpoint may take. */
const ASSERTION_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The managed identity's token for the token exchange audience, kept until shortly before it
 * expires: ClientAssertionCredential asks for an assertion on every token request (one per
 * scope, and again whenever MSAL's cache misses), and one identity token serves them all.
 * Concurrent asks share one request.
 */
class ManagedIdentityAssertion {
  private cached?: { token: string; expiresAt: number };
  private inflight?: Promise<string>;

  constructor(
    private readonly identity: TokenCredential,
    private readonly scope: string,
  ) {}

  get(): Promise<string> {
    if (this.cached && this.cached.expiresAt - REFRESH_MARGIN_MS > Date.now()) return Promise.resolve(this.cached.token);
    this.inflight ??= this.request().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async request(): Promise<string> {
    const result = await this.identity.getToken(this.scope, { abortSignal: AbortSignal.timeout(ASSERTION_REQUEST_TIMEOUT_MS) });
    if (!result) throw new Error('the managed identity returned no token');
    registerSensitive(result.token, { expiresAt: result.expiresOnTimestamp });
    this.cached = { token: result.token, expiresAt: result.expiresOnTimestamp };
    return result.token;
  }
}

/**
 * A `federated` profile's credential: the app registration's client credentials grant with the
 * managed identity's token as the client assertion (workload identity federation), so no secret
 * or certificate exists anywhere.
 */
export function createFederatedCredential(
  profile: Profile & { auth: FederatedAuthConfig },
  sdk: typeof import('@azure/identity'),
  options: ClientAssertionCredentialOptions,
  defaultManagedIdentityClientId?: string,
): TokenCredential {
  const clientId = profile.auth.managedIdentityClientId ?? defaultManagedIdentityClientId;
  const identity = clientId === undefined ? new sdk.ManagedIdentityCredential() : new sdk.ManagedIdentityCredential({ clientId });
  const assertion = new ManagedIdentityAssertion(identity, tokenExchangeScope(profile.endpoints));
  return new sdk.ClientAssertionCredential(profile.tenantId!, profile.clientId!, () => assertion.get(), options);
}
