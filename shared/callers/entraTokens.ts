import type { JWTPayload } from 'jose';
import { MailError } from '../errors.js';
import { stripEnds } from '../text.js';

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

type TokenVersion = '1.0' | '2.0';

/**
 * Validates Entra access tokens for this app's API with jose, against the tenant's OpenID
 * discovery document and its JWKS: signature (RS256), `iss`, `aud`, `exp` and `nbf`. Both
 * token versions: v2.0 (the API's app registration sets `accessTokenAcceptedVersion: 2`; iss
 * `https://login.microsoftonline.com/<tenant>/v2.0`) and v1.0, Entra's default for an API
 * registration (iss `https://sts.windows.net/<tenant>/`), each checked against its own
 * discovery document (`.../v2.0/.well-known/openid-configuration` or
 * `.../.well-known/openid-configuration`), whose issuer and keys it must match. The v1.0
 * document is read only when a token claims an issuer other than v2.0's. jose keeps the keys
 * and fetches them again when a token names an unknown `kid`.
 */
export class EntraTokenVerifier {
  private readonly discovered = new Map<TokenVersion, Promise<Discovered>>();

  constructor(private readonly options: EntraTokenVerifierOptions) {}

  async verify(token: string): Promise<JWTPayload> {
    const jose = require('jose') as typeof import('jose');
    const { issuer, keys } = await this.discoveryFor(token);
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

  /** v2.0's document, unless the token claims another issuer and v1.0's names that one; a claim matching neither fails against v2.0's. */
  private async discoveryFor(token: string): Promise<Discovered> {
    const v2 = await this.discovery('2.0');
    const claimed = claimedIssuer(token);
    if (claimed === undefined || claimed === v2.issuer) return v2;
    const v1 = await this.discovery('1.0').catch(() => undefined);
    return v1 !== undefined && v1.issuer === claimed ? v1 : v2;
  }

  private discovery(version: TokenVersion): Promise<Discovered> {
    let found = this.discovered.get(version);
    if (found === undefined) {
      found = this.discover(version).catch((error: unknown) => {
        this.discovered.delete(version);
        throw error;
      });
      this.discovered.set(version, found);
    }
    return found;
  }

  private async discover(version: TokenVersion): Promise<Discovered> {
    const jose = require('jose') as typeof import('jose');
    const url = `${stripEnds(this.options.authority, '/', 'end')}/${encodeURIComponent(this.options.tenantId)}${version === '2.0' ? '/v2.0' : ''}/.well-known/openid-configuration`;
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

/** The `iss` a token claims, read without verifying anything: it only picks the document to verify against. */
function claimedIssuer(token: string): string | undefined {
  const jose = require('jose') as typeof import('jose');
  try {
    const iss = jose.decodeJwt(token).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}
