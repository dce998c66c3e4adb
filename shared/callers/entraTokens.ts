import type { JWTPayload } from 'jose';
import { MailError } from '../errors.js';

export interface EntraTokenVerifierOptions {
  /** The authority, e.g. https://login.microsoftonline.com. */
  authority: string;
  tenantId: string;
  /** The token's `aud`: this app's API (its application ID URI or client id). */
  audience: string;
}

interface Discovered {
  issuer: string;
  keys: ReturnType<typeof import('jose').createRemoteJWKSet>;
}

/** Clock skew allowed on exp and nbf. */
const CLOCK_TOLERANCE_SECONDS = 60;

/**
 * Validates Entra access tokens for this app's API with jose, against the tenant's OpenID
 * discovery document and its JWKS: signature (RS256), `iss` (the discovery's issuer, so v2.0
 * tokens: the API's app registration sets accessTokenAcceptedVersion 2), `aud`, `exp` and `nbf`.
 * jose keeps the keys and fetches them again when a token names an unknown `kid`.
 */
export class EntraTokenVerifier {
  private discovered?: Promise<Discovered>;

  constructor(private readonly options: EntraTokenVerifierOptions) {}

  async verify(token: string): Promise<JWTPayload> {
    const jose = require('jose') as typeof import('jose');
    const { issuer, keys } = await this.discovery();
    try {
      const { payload } = await jose.jwtVerify(token, keys, { issuer, audience: this.options.audience, algorithms: ['RS256'], clockTolerance: CLOCK_TOLERANCE_SECONDS });
      return payload;
    } catch (error) {
      const reason = (error as { code?: string }).code ?? 'ERR_JWT_INVALID';
      throw new MailError('EUNAUTHENTICATED', `the bearer token was refused (${reason})`, {
        hint: `Send an access token issued by tenant ${this.options.tenantId} for audience ${this.options.audience}, current and signed by Entra.`,
        challenge: `Bearer realm="m365-mail", error="invalid_token"`,
        cause: error,
      });
    }
  }

  private discovery(): Promise<Discovered> {
    this.discovered ??= this.discover().catch((error: unknown) => {
      this.discovered = undefined;
      throw error;
    });
    return this.discovered;
  }

  private async discover(): Promise<Discovered> {
    const jose = require('jose') as typeof import('jose');
    const url = `${this.options.authority.replace(/\/+$/, '')}/${encodeURIComponent(this.options.tenantId)}/v2.0/.well-known/openid-configuration`;
    let document: { issuer?: unknown; jwks_uri?: unknown };
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      document = (await response.json()) as typeof document;
    } catch (error) {
      throw new MailError('EUNAVAILABLE', `the OpenID configuration of tenant ${this.options.tenantId} could not be read: ${(error as Error).message}`, {
        hint: 'Check API_TENANT_ID, API_CLOUD / AZURE_AUTHORITY_HOST and that this host reaches the authority.',
        cause: error,
      });
    }
    if (typeof document.issuer !== 'string' || typeof document.jwks_uri !== 'string') {
      throw new MailError('EUNAVAILABLE', `the OpenID configuration of tenant ${this.options.tenantId} has no issuer or jwks_uri`, { hint: 'Check API_CLOUD / AZURE_AUTHORITY_HOST.' });
    }
    return { issuer: document.issuer, keys: jose.createRemoteJWKSet(new URL(document.jwks_uri)) };
  }
}
