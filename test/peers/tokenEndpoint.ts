import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, X509Certificate, type KeyObject, type KeyPairKeyObjectResult } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpsPeer, readBody, sendJson as json } from './httpsServer.js';

/**
 * An Entra-compatible token endpoint on https://127.0.0.1:<port>, enough for the real
 * @azure/identity and @azure/msal-node clients: OpenID discovery, client credentials with a
 * secret or a certificate assertion, the delegated flows (an /authorize endpoint that stands
 * in for the signed-in user's browser, authorization code with PKCE S256, refresh tokens that
 * rotate or stay), an App Service-style managed identity endpoint, and an RFC 7662
 * introspection endpoint for mail servers that validate bearer tokens (Dovecot). For workload
 * identity federation, the managed identity endpoint signs its tokens for the token exchange
 * audience (RS256, with the key of the identities' tenant), and the client credentials grant
 * takes such a token as a jwt-bearer client assertion, checked against the app's federated
 * identity credentials as Entra checks them: signature, expiry, issuer, subject, audience.
 */
export interface RegisteredApp {
  tenantId: string;
  clientId: string;
  /** Current valid secret; change it to simulate rotation. */
  secret?: string;
  /** PEM certificate whose key signs client assertions. */
  certificatePem?: string;
  /**
   * Application permissions granted per resource, e.g. `{ 'https://graph.microsoft.com': ['Mail.Send'] }`.
   * When set, tokens are JWT-shaped as Entra's are, with the resource's permissions in the `roles`
   * claim (unsigned: only this peer validates them). Otherwise tokens are opaque.
   */
  roles?: Record<string, string[]>;
  /** Federated identity credentials: which external tokens (here: managed identity tokens) the app accepts as its client assertion. */
  federatedCredentials?: FederatedCredential[];
  /** Redirect URIs /authorize and the code redemption accept (delegated consent). */
  redirectUris?: string[];
  /**
   * 'rotate': every refresh answers with a new refresh token and the used one stops working
   * (Entra does this for single-page apps); 'keep': the refresh token stays valid and the answer
   * carries none (a confidential client may get either). @default 'rotate'
   */
  refreshTokens?: 'rotate' | 'keep';
}

/** A federated identity credential on an app registration; an assertion must match all three. */
export interface FederatedCredential {
  issuer: string;
  subject: string;
  audiences: string[];
}

/** The audience a managed identity token must carry to be a client assertion (public cloud). */
export const TOKEN_EXCHANGE_AUDIENCE = 'api://AzureADTokenExchange';
/** The audience of Azure Storage tokens, and the issuer prefix of Entra's v1.0 tokens, the only ones Azurite's OAuth accepts (its own list). */
export const STORAGE_AUDIENCE = 'https://storage.azure.com';
const ENTRA_V1_ISSUER_PREFIX = 'https://sts.windows.net/';

/** The user /authorize signs in, or the error the user's choice ends in. */
export type ConsentOutcome = { upn: string; oid?: string } | { error: 'access_denied' | 'consent_required' };

/** A refresh token grant: what the user consented to, for which app. */
export interface RefreshTokenRecord {
  clientId: string;
  tenantId: string;
  upn: string;
  oid: string;
  /** Consented delegated scopes, e.g. https://outlook.office365.com/SMTP.Send */
  scopes: string[];
  /** Why it no longer works, if it does not. */
  invalid?: 'rotated' | 'revoked' | 'expired';
}

interface AuthorizationCode {
  clientId: string;
  tenantId: string;
  redirectUri: string;
  codeChallenge: string;
  scopes: string[];
  upn: string;
  oid: string;
  nonce?: string;
  redeemed: boolean;
}

/** OpenID Connect scopes that name no resource. */
const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);
/** A scope without a resource URI is a Graph permission, as in Entra. */
const DEFAULT_RESOURCE = 'https://graph.microsoft.com';

export interface IssuedToken {
  token: string;
  clientId: string;
  tenantId: string;
  /** The resource of the scope, e.g. https://outlook.office365.com */
  audience: string;
  scope: string;
  expiresAt: number;
  via: 'clientSecret' | 'certificate' | 'federated' | 'managedIdentity' | 'delegated';
  /** The signed-in user of a delegated token. */
  upn?: string;
}

export interface TokenRequestRecord {
  path: string;
  clientId?: string;
  scope?: string;
  /** grant_type of a token endpoint request. */
  grant?: string;
  /** The AADSTS code of a refusal. */
  errorCode?: number;
  /** The client_assertion presented, if any. */
  assertion?: string;
  outcome: 'issued' | 'refused';
}

export class TokenEndpointPeer extends HttpsPeer {
  readonly apps = new Map<string, RegisteredApp>();
  readonly issued = new Map<string, IssuedToken>();
  readonly requests: TokenRequestRecord[] = [];
  /** The secret the managed-identity endpoint expects in X-IDENTITY-HEADER. */
  readonly identityHeader = randomBytes(16).toString('hex');
  /** Client ids of the user-assigned identities attached to the "app"; others are refused as App Service does. */
  readonly userAssignedIdentities = new Set<string>();
  /** Lifetime of issued tokens, seconds. */
  tokenLifetimeSeconds = 3600;
  /** Lifetime of the managed identity endpoint's tokens, seconds; default tokenLifetimeSeconds. */
  managedIdentityTokenLifetimeSeconds?: number;
  /** The tenant the managed identities belong to: their tokens' issuer is `<url>/<tenant>/v2.0`. */
  managedIdentityTenant = 'managed';
  /** What the next visit to /authorize ends in: the user who signs in and consents, or an error. */
  consent: ConsentOutcome = { upn: 'user@contoso.com' };
  /**
   * The `tid` of accounts signing in at the `consumers` authority: Entra's tenant id of
   * personal Microsoft accounts. A test sets another to play a work account in its place.
   */
  consumersTenantId = '9188040d-6c67-4c5b-b112-36a304b66dad';
  /** Every refresh token ever issued, valid or not. */
  readonly refreshTokens = new Map<string, RefreshTokenRecord>();
  private readonly codes = new Map<string, AuthorizationCode>();
  /** The keys the tenants sign access tokens for APIs with (RS256), served as the discovery's JWKS. */
  private keys?: { signing: Array<KeyPairKeyObjectResult & { kid: string }>; stranger: KeyPairKeyObjectResult };

  /** Made when first needed: most tests never ask for an API token, and RSA keys take a while. */
  private get signingKeys() {
    return this.apiKeys().signing;
  }

  private apiKeys() {
    this.keys ??= {
      signing: [0, 1].map((i) => ({ ...generateKeyPairSync('rsa', { modulusLength: 2048 }), kid: `peer-key-${i}` })),
      // A key no tenant publishes: a token it signs must be refused.
      stranger: generateKeyPairSync('rsa', { modulusLength: 2048 }),
    };
    return this.keys;
  }

  /**
   * An access token for an API (an app exposing one, as this app does for its callers), signed
   * RS256 as Entra signs v2.0 tokens: iss `<url>/<tenant>/v2.0`, aud, azp (the calling app),
   * roles, exp. Each field can be made wrong to try a validator.
   */
  async apiToken(input: { tenantId: string; clientId: string; audience: string; roles?: string[]; expiresInSeconds?: number; issuer?: string; signedBy?: 'stranger'; keyIndex?: number; claims?: Record<string, unknown>; version?: '1.0' | '2.0' }): Promise<string> {
    const jose = await import('jose');
    const key = input.signedBy === 'stranger' ? { privateKey: this.apiKeys().stranger.privateKey, kid: 'peer-key-0' } : this.signingKeys[input.keyIndex ?? 0]!;
    const now = Math.floor(Date.now() / 1000);
    // v1.0 tokens name the calling app in appid and come from the sts issuer; v2.0 ones use azp.
    const v1 = input.version === '1.0';
    return new jose.SignJWT({ ...(v1 ? { appid: input.clientId } : { azp: input.clientId }), tid: input.tenantId, ver: v1 ? '1.0' : '2.0', ...(input.roles && { roles: input.roles }), ...input.claims })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid })
      .setIssuer(input.issuer ?? (v1 ? this.v1Issuer(input.tenantId) : `${this.url}/${input.tenantId}/v2.0`))
      .setAudience(input.audience)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + (input.expiresInSeconds ?? 3600))
      .sign(key.privateKey);
  }

  /** How many times the JWKS was fetched. */
  jwksFetches = 0;

  /** Where v1.0 tokens come from: Entra's is https://sts.windows.net/<tenant>/, another host than the authority's. */
  v1Issuer(tenant: string): string {
    return `${this.url}/sts/${tenant}/`;
  }

  /** The iss of the managed identity endpoint's signed tokens: what a federated credential names as its issuer. */
  get managedIdentityIssuer(): string {
    return `${this.url}/${this.managedIdentityTenant}/v2.0`;
  }

  /** The object (principal) id of a managed identity: the sub of its tokens, and a federated credential's subject. */
  managedIdentityPrincipal(clientId = 'system-assigned'): string {
    return oidOf(`managed-identity:${clientId}`);
  }

  /** The key the identities' tenant signs managed identity tokens with; made when first needed. */
  private identityKey?: KeyPairKeyObjectResult;
  private get managedIdentityKey(): KeyPairKeyObjectResult {
    this.identityKey ??= generateKeyPairSync('rsa', { modulusLength: 2048 });
    return this.identityKey;
  }

  /** For IDENTITY_ENDPOINT (App Service managed identity). */
  get managedIdentityEndpoint(): string {
    return `${this.url}/msi/token`;
  }

  get introspectionUrl(): string {
    return `${this.url}/introspect`;
  }

  register(app: RegisteredApp): RegisteredApp {
    this.apps.set(app.clientId, app);
    return app;
  }

  tokenRequests(): TokenRequestRecord[] {
    return this.requests.filter((r) => r.path.endsWith('/oauth2/v2.0/token') || r.path.startsWith('/msi/'));
  }

  /** The token's record if this endpoint issued it, it has not expired, and (if given) it is for the audience. */
  validate(token: string, audience?: string): IssuedToken | undefined {
    const t = this.issued.get(token);
    if (!t || t.expiresAt < Date.now()) return undefined;
    if (audience !== undefined && t.audience !== audience) return undefined;
    return t;
  }

  /** Drops every issued token (as if all had expired). */
  revokeAll(): void {
    this.issued.clear();
  }

  /** A refresh token as if the user had consented earlier (what an operator pastes into the vault). */
  grantRefreshToken(input: { tenantId: string; clientId: string; upn: string; scopes: string[] }): string {
    const token = `rt-${randomBytes(24).toString('base64url')}`;
    this.refreshTokens.set(token, { ...input, oid: oidOf(input.upn) });
    return token;
  }

  /** The user's refresh tokens stop working: 'revoked' (password reset, "revoke sessions": AADSTS50173) or 'expired' (90 days unused: AADSTS700082). */
  invalidateRefreshTokens(upn: string, reason: 'revoked' | 'expired'): void {
    for (const record of this.refreshTokens.values()) if (record.upn === upn && !record.invalid) record.invalid = reason;
  }

  /** Whether a refresh token would be accepted now. */
  refreshTokenValid(token: string): boolean {
    const record = this.refreshTokens.get(token);
    return record !== undefined && record.invalid === undefined;
  }

  protected errorBody(error: unknown): unknown {
    return { error: 'server_error', error_description: String(error) };
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    const discovery = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (req.method === 'GET' && discovery) {
      const tenant = discovery[1]!;
      return json(res, 200, {
        token_endpoint: `${this.url}/${tenant}/oauth2/v2.0/token`,
        authorization_endpoint: `${this.url}/${tenant}/oauth2/v2.0/authorize`,
        device_authorization_endpoint: `${this.url}/${tenant}/oauth2/v2.0/devicecode`,
        end_session_endpoint: `${this.url}/${tenant}/oauth2/v2.0/logout`,
        issuer: `${this.url}/${tenant}/v2.0`,
        jwks_uri: `${this.url}/${tenant}/discovery/v2.0/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
        token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      });
    }
    const v1Discovery = /^\/([^/]+)\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (req.method === 'GET' && v1Discovery) {
      const tenant = v1Discovery[1]!;
      return json(res, 200, {
        token_endpoint: `${this.url}/${tenant}/oauth2/token`,
        issuer: this.v1Issuer(tenant),
        jwks_uri: `${this.url}/common/discovery/keys`,
        response_types_supported: ['code', 'id_token', 'code id_token', 'token id_token', 'token'],
      });
    }
    if (req.method === 'GET' && (/^\/[^/]+\/discovery\/v2\.0\/keys$/.test(url.pathname) || url.pathname === '/common/discovery/keys')) {
      this.jwksFetches++;
      return json(res, 200, { keys: this.signingKeys.map((k) => ({ ...(k.publicKey.export({ format: 'jwk' }) as object), kid: k.kid, use: 'sig', alg: 'RS256' })) });
    }
    const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (req.method === 'POST' && tokenPath) return this.token(tokenPath[1]!, new URLSearchParams(body), url.pathname, res);
    const authorizePath = /^\/([^/]+)\/oauth2\/v2\.0\/authorize$/.exec(url.pathname);
    if (req.method === 'GET' && authorizePath) return this.authorize(authorizePath[1]!, url, res);
    if (req.method === 'GET' && url.pathname === '/msi/token') return this.managedIdentity(req, url, res);
    if (req.method === 'POST' && url.pathname === '/introspect') {
      const token = new URLSearchParams(body).get('token') ?? '';
      const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const t = this.validate(token || bearer || '');
      this.requests.push({ path: url.pathname, clientId: t?.clientId, outcome: t ? 'issued' : 'refused' });
      return json(res, 200, t ? { active: true, email: mailboxOf(t), client_id: t.clientId, aud: t.audience, exp: Math.floor(t.expiresAt / 1000) } : { active: false });
    }
    return json(res, 404, { error: 'not_found', error_description: `no route for ${req.method} ${url.pathname}` });
  }

  private token(tenantId: string, form: URLSearchParams, path: string, res: ServerResponse): void {
    const clientId = form.get('client_id') ?? '';
    const scope = form.get('scope') ?? '';
    const grant = form.get('grant_type') ?? '';
    const assertion = form.get('client_assertion') ?? undefined;
    const refuse: Refuse = (status, error, code, description) => {
      this.requests.push({ path, clientId, scope, grant, errorCode: code, outcome: 'refused', ...(assertion !== undefined && { assertion }) });
      json(res, status, { error, error_description: `AADSTS${code}: ${description}`, error_codes: [code], timestamp: new Date().toISOString(), trace_id: randomBytes(8).toString('hex'), correlation_id: randomBytes(8).toString('hex') });
    };
    const issued = (body: Record<string, unknown>) => {
      this.requests.push({ path, clientId, scope, grant, outcome: 'issued', ...(assertion !== undefined && { assertion }) });
      json(res, 200, body);
    };
    if (grant === 'client_credentials') return this.clientCredentials(tenantId, form, refuse, issued);
    if (grant === 'authorization_code') return this.authorizationCode(tenantId, form, refuse, issued);
    if (grant === 'refresh_token') return this.refreshToken(tenantId, form, refuse, issued);
    return refuse(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  }

  /**
   * The browser leg of the authorization code flow, with the user's choice taken from
   * `consent`: a redirect to redirect_uri with code and state, or with an error. Entra shows
   * its own error page (no redirect) for an unknown app or redirect URI, and so does this.
   */
  private authorize(tenantId: string, url: URL, res: ServerResponse): void {
    const q = url.searchParams;
    const clientId = q.get('client_id') ?? '';
    const redirectUri = q.get('redirect_uri') ?? '';
    const record = (outcome: TokenRequestRecord['outcome'], errorCode?: number) => this.requests.push({ path: url.pathname, clientId, scope: q.get('scope') ?? '', outcome, errorCode });
    const page = (code: number, description: string) => {
      record('refused', code);
      res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`AADSTS${code}: ${description}`);
    };
    const app = this.apps.get(clientId);
    if (!app || app.tenantId !== tenantId) return page(700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`);
    if (!app.redirectUris?.includes(redirectUri)) return page(50011, `The redirect URI '${redirectUri}' specified in the request does not match the redirect URIs configured for the application '${clientId}'.`);
    if (q.get('response_type') !== 'code') return page(900144, "The request body must contain the following parameter: 'response_type' with value 'code'.");
    const codeChallenge = q.get('code_challenge') ?? '';
    // Entra also takes "plain"; the stand-in insists on S256 so that a client sending plain fails here.
    if (q.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(codeChallenge)) return page(501481, 'The code challenge must be S256 and 43 characters.');
    const back = new URL(redirectUri);
    const state = q.get('state');
    if (state !== null) back.searchParams.set('state', state);
    const outcome = this.consent;
    if ('error' in outcome) {
      back.searchParams.set('error', outcome.error);
      back.searchParams.set('error_description', outcome.error === 'access_denied' ? 'AADSTS65004: User declined to consent to access the app.' : 'AADSTS65001: The user or administrator has not consented to use the application.');
      record('refused', outcome.error === 'access_denied' ? 65004 : 65001);
    } else {
      const code = `code-${randomBytes(24).toString('base64url')}`;
      this.codes.set(code, {
        clientId, tenantId, redirectUri, codeChallenge,
        scopes: resourceScopes(q.get('scope') ?? ''),
        upn: outcome.upn, oid: outcome.oid ?? oidOf(outcome.upn),
        nonce: q.get('nonce') ?? undefined,
        redeemed: false,
      });
      back.searchParams.set('code', code);
      record('issued');
    }
    res.writeHead(302, { Location: back.toString() });
    res.end();
  }

  /** Confidential clients prove themselves with their secret; a public client (no secret registered) sends none. */
  private authenticateClient(app: RegisteredApp, form: URLSearchParams, refuse: Refuse): boolean {
    if (app.secret === undefined) {
      if (form.has('client_secret')) {
        refuse(401, 'invalid_client', 700025, 'Client is public so neither client_assertion nor client_secret should be presented.');
        return false;
      }
      return true;
    }
    if (form.get('client_secret') === app.secret) return true;
    if (form.has('client_secret')) refuse(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
    else refuse(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    return false;
  }

  private authorizationCode(tenantId: string, form: URLSearchParams, refuse: Refuse, issued: (body: Record<string, unknown>) => void): void {
    const clientId = form.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    if (!app || app.tenantId !== tenantId) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`);
    if (!this.authenticateClient(app, form, refuse)) return;
    const code = this.codes.get(form.get('code') ?? '');
    if (!code || code.clientId !== clientId) return refuse(400, 'invalid_grant', 70000, 'The provided authorization code is not valid.');
    if (code.redeemed) return refuse(400, 'invalid_grant', 54005, 'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.');
    code.redeemed = true;
    if (form.get('redirect_uri') !== code.redirectUri) return refuse(400, 'invalid_grant', 500112, 'The reply address does not match the reply address provided when requesting the authorization code.');
    const verifier = form.get('code_verifier') ?? '';
    if (createHash('sha256').update(verifier).digest('base64url') !== code.codeChallenge) return refuse(400, 'invalid_grant', 501481, 'The Code_Verifier does not match the code_challenge supplied in the authorization request.');
    const requested = resourceScopes(form.get('scope') ?? '');
    const resources = new Set(requested.map(resourceOf));
    if (resources.size > 1) return refuse(400, 'invalid_scope', 28000, 'Provided value for the input parameter scope is not valid because it contains more than one resource.');
    const grant: RefreshTokenRecord = { clientId, tenantId, upn: code.upn, oid: code.oid, scopes: code.scopes };
    issued(this.delegatedAnswer(grant, requested, code.nonce, 'new'));
  }

  private refreshToken(tenantId: string, form: URLSearchParams, refuse: Refuse, issued: (body: Record<string, unknown>) => void): void {
    const clientId = form.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    if (!app || app.tenantId !== tenantId) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`);
    if (!this.authenticateClient(app, form, refuse)) return;
    const presented = form.get('refresh_token') ?? '';
    const grant = this.refreshTokens.get(presented);
    if (!grant || grant.clientId !== clientId) return refuse(400, 'invalid_grant', 9002313, 'Invalid request. Request is malformed or invalid.');
    if (grant.invalid === 'revoked') return refuse(400, 'invalid_grant', 50173, 'The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.');
    if (grant.invalid === 'expired') return refuse(400, 'invalid_grant', 700082, 'The refresh token has expired due to inactivity.');
    if (grant.invalid === 'rotated') return refuse(400, 'invalid_grant', 70000, 'The provided value for the input parameter \'refresh_token\' or \'assertion\' is not valid.');
    const requested = resourceScopes(form.get('scope') ?? '');
    const resources = new Set(requested.map(resourceOf));
    if (resources.size !== 1) return refuse(400, 'invalid_scope', 28000, 'Provided value for the input parameter scope is not valid because it contains more than one resource.');
    const resource = [...resources][0]!;
    const consented = grant.scopes.filter((s) => resourceOf(s) === resource);
    const missing = requested.filter((s) => !s.endsWith('/.default') && !consented.includes(s));
    if (consented.length === 0 || missing.length > 0) return refuse(400, 'invalid_grant', 65001, `The user or administrator has not consented to use the application with ID '${clientId}'. Send an interactive authorization request for this user and resource.`);
    const rotate = (app.refreshTokens ?? 'rotate') === 'rotate';
    if (rotate) grant.invalid = 'rotated';
    issued(this.delegatedAnswer({ ...grant, invalid: undefined }, requested, undefined, rotate ? 'new' : 'none'));
  }

  private accountTenant(pathTenant: string): string {
    return pathTenant.toLowerCase() === 'consumers' ? this.consumersTenantId : pathTenant;
  }

  /** A delegated token answer: access token for the one requested resource, id token, client info, and maybe a new refresh token. */
  private delegatedAnswer(grant: RefreshTokenRecord, requested: string[], nonce: string | undefined, refresh: 'new' | 'none'): Record<string, unknown> {
    const resource = resourceOf(requested[0] ?? grant.scopes[0] ?? `${DEFAULT_RESOURCE}/.default`);
    const consented = grant.scopes.filter((s) => resourceOf(s) === resource);
    const token = this.issue({ clientId: grant.clientId, tenantId: grant.tenantId, scope: `${resource}/.default`, via: 'delegated', upn: grant.upn });
    const now = Math.floor(Date.now() / 1000);
    const idToken = [
      { typ: 'JWT', alg: 'none' },
      { aud: grant.clientId, iss: `${this.url}/${grant.tenantId}/v2.0`, iat: now, nbf: now, exp: now + 3600, name: grant.upn, preferred_username: grant.upn, oid: grant.oid, sub: grant.oid, tid: this.accountTenant(grant.tenantId), ver: '2.0', ...(nonce ? { nonce } : {}) },
    ].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.') + '.';
    const body: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: consented.map((s) => s.slice(resource.length + 1)).join(' '),
      expires_in: this.tokenLifetimeSeconds,
      ext_expires_in: this.tokenLifetimeSeconds,
      access_token: token.token,
      id_token: idToken,
      client_info: Buffer.from(JSON.stringify({ uid: grant.oid, utid: this.accountTenant(grant.tenantId) })).toString('base64url'),
    };
    if (refresh === 'new') {
      const next = `rt-${randomBytes(24).toString('base64url')}`;
      this.refreshTokens.set(next, { clientId: grant.clientId, tenantId: grant.tenantId, upn: grant.upn, oid: grant.oid, scopes: grant.scopes });
      body.refresh_token = next;
    }
    return body;
  }

  private clientCredentials(tenantId: string, form: URLSearchParams, refuse: Refuse, issued: (body: Record<string, unknown>) => void): void {
    const clientId = form.get('client_id') ?? '';
    const scope = form.get('scope') ?? '';
    const app = this.apps.get(clientId);
    if (!app || app.tenantId !== tenantId) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`);
    let via: IssuedToken['via'];
    if (form.has('client_secret')) {
      if (!app.secret || form.get('client_secret') !== app.secret) return refuse(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
      via = 'clientSecret';
    } else if (form.has('client_assertion')) {
      const assertion = form.get('client_assertion') ?? '';
      if (form.get('client_assertion_type') !== JWT_BEARER) return refuse(400, 'invalid_request', 900144, `The request body must contain the following parameter: 'client_assertion_type' with value '${JWT_BEARER}'.`);
      // A certificate assertion is the app's own (iss = sub = client id); any other is an external token for a federated credential.
      if (jwtPayload(assertion)?.iss === clientId) {
        if (!app.certificatePem || !verifyAssertion(assertion, app.certificatePem, clientId)) {
          return refuse(401, 'invalid_client', 700027, 'The certificate with identifier used to sign the client assertion is not registered on application.');
        }
        via = 'certificate';
      } else {
        const refusal = this.checkFederatedAssertion(app, assertion);
        if (refusal) return refuse(400, 'invalid_client', refusal.code, refusal.description);
        via = 'federated';
      }
    } else {
      return refuse(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    if (!/\/\.default$/.test(scope.split(' ').find((s) => s.endsWith('/.default')) ?? '')) return refuse(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`);
    const resourceScope = scope.split(' ').find((s) => s.endsWith('/.default'))!;
    const token = this.issue({ clientId, tenantId, scope: resourceScope, via });
    issued({ token_type: 'Bearer', expires_in: this.tokenLifetimeSeconds, ext_expires_in: this.tokenLifetimeSeconds, access_token: token.token });
  }

  /**
   * Entra's checks of an external token presented as a client assertion: signed by its issuer's
   * key (here the one key of the managed identities' tenant), within its lifetime, and matching
   * one federated credential of the app by issuer, then subject, then audience. Codes and texts
   * are Entra's (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
   */
  private checkFederatedAssertion(app: RegisteredApp, assertion: string): { code: number; description: string } | undefined {
    const payload = jwtPayload(assertion);
    if (!payload) return { code: 50027, description: 'JWT token is invalid or malformed.' };
    if (!verifyRs256(assertion, this.managedIdentityKey.publicKey)) return { code: 50013, description: 'Assertion failed signature validation.' };
    if (typeof payload.exp !== 'number' || payload.exp * 1000 < Date.now()) return { code: 700024, description: 'Client assertion is not within its valid time range.' };
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : [];
    const credentials = app.federatedCredentials ?? [];
    const byIssuer = credentials.filter((c) => c.issuer === payload.iss);
    const bySubject = byIssuer.filter((c) => c.subject === payload.sub);
    const presented = `Assertion Issuer: '${String(payload.iss)}'. Assertion Subject: '${String(payload.sub)}'. Assertion Audience: '${audiences.join(',')}'.`;
    if (credentials.length === 0) return { code: 70021, description: `No matching federated identity record found for presented assertion. ${presented}` };
    if (byIssuer.length === 0) return { code: 700211, description: `No matching federated identity record found for presented assertion issuer '${String(payload.iss)}'.` };
    if (bySubject.length === 0) return { code: 700213, description: `No matching federated identity record found for presented assertion subject '${String(payload.sub)}'.` };
    if (!bySubject.some((c) => c.audiences.some((a) => audiences.includes(a)))) return { code: 700212, description: `No matching federated identity record found for presented assertion audience '${audiences.join(',')}'.` };
    return undefined;
  }

  /** A managed identity token for the token exchange audience, signed as Entra signs the identity's tokens. */
  private managedIdentityAssertion(clientId: string, audience: string, expiresAt: number): string {
    const now = Math.floor(Date.now() / 1000);
    const principal = this.managedIdentityPrincipal(clientId);
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${part({ typ: 'JWT', alg: 'RS256', kid: 'managed-identity-key' })}.${part({
      aud: audience, iss: this.managedIdentityIssuer, sub: principal, oid: principal, azp: clientId, tid: this.managedIdentityTenant, iat: now, nbf: now, exp: Math.floor(expiresAt / 1000),
      // Entra's unique token id: two tokens issued in one second differ.
      uti: randomBytes(16).toString('base64url'),
    })}`;
    return `${unsigned}.${sign('sha256', Buffer.from(unsigned), this.managedIdentityKey.privateKey).toString('base64url')}`;
  }

  /**
   * A managed identity's token for Azure Storage as Entra issues it (a v1.0 token: iss
   * https://sts.windows.net/<tenant>/, aud https://storage.azure.com, nbf and exp), which is what
   * Azurite's `--oauth basic` checks; signed with the identities' key, which Azurite does not check.
   */
  private storageToken(clientId: string, expiresAt: number): string {
    const now = Math.floor(Date.now() / 1000);
    const principal = this.managedIdentityPrincipal(clientId);
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const unsigned = `${part({ typ: 'JWT', alg: 'RS256', kid: 'managed-identity-key' })}.${part({
      aud: STORAGE_AUDIENCE, iss: `${ENTRA_V1_ISSUER_PREFIX}${this.managedIdentityTenant}/`, sub: principal, oid: principal, appid: clientId, tid: this.managedIdentityTenant, iat: now, nbf: now - 60, exp: Math.floor(expiresAt / 1000),
    })}`;
    return `${unsigned}.${sign('sha256', Buffer.from(unsigned), this.managedIdentityKey.privateKey).toString('base64url')}`;
  }

  private managedIdentity(req: IncomingMessage, url: URL, res: ServerResponse): void {
    const resource = url.searchParams.get('resource') ?? '';
    const clientId = url.searchParams.get('client_id') ?? 'system-assigned';
    if (req.headers['x-identity-header'] !== this.identityHeader) {
      this.requests.push({ path: url.pathname, clientId, scope: resource, outcome: 'refused' });
      return json(res, 401, { statusCode: 401, message: 'Unauthorized request: missing or wrong X-IDENTITY-HEADER' });
    }
    if (clientId !== 'system-assigned' && !this.userAssignedIdentities.has(clientId)) {
      this.requests.push({ path: url.pathname, clientId, scope: resource, outcome: 'refused' });
      return json(res, 400, { statusCode: 400, message: 'Unable to load the proper Managed Identity.', correlationId: randomBytes(16).toString('hex') });
    }
    const token = this.issue({ clientId, tenantId: this.managedIdentityTenant, scope: `${resource.replace(/\/$/, '')}/.default`, via: 'managedIdentity' }, this.managedIdentityTokenLifetimeSeconds);
    if (token.audience.startsWith(TOKEN_EXCHANGE_AUDIENCE) || token.audience === STORAGE_AUDIENCE) {
      this.issued.delete(token.token);
      token.token = token.audience === STORAGE_AUDIENCE
        ? this.storageToken(clientId, token.expiresAt)
        : this.managedIdentityAssertion(clientId, token.audience, token.expiresAt);
      this.issued.set(token.token, token);
    }
    this.requests.push({ path: url.pathname, clientId, scope: resource, outcome: 'issued' });
    json(res, 200, { access_token: token.token, expires_on: String(Math.floor(token.expiresAt / 1000)), resource, token_type: 'Bearer', client_id: clientId });
  }

  private issue(input: { clientId: string; tenantId: string; scope: string; via: IssuedToken['via']; upn?: string }, lifetimeSeconds = this.tokenLifetimeSeconds): IssuedToken {
    const audience = input.scope.replace(/\/\.default$/, '');
    const granted = this.apps.get(input.clientId)?.roles;
    const jwtPart = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const token: IssuedToken = {
      ...input,
      token:
        granted === undefined
          ? `tok-${randomBytes(24).toString('base64url')}`
          : `${jwtPart({ typ: 'JWT', alg: 'none' })}.${jwtPart({ aud: audience, tid: input.tenantId, appid: input.clientId, roles: granted[audience] ?? [] })}.${randomBytes(24).toString('base64url')}`,
      audience,
      expiresAt: Date.now() + lifetimeSeconds * 1000,
    };
    this.issued.set(token.token, token);
    return token;
  }
}

type Refuse = (status: number, error: string, code: number, description: string) => void;

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** The claims of a JWT, unverified; undefined when it is not one. */
function jwtPayload(jwt: string): Record<string, unknown> | undefined {
  const parts = jwt.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString()) as unknown;
    return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function verifyRs256(jwt: string, key: KeyObject): boolean {
  const [h, p, s] = jwt.split('.');
  if (!h || !p || !s) return false;
  let header: { alg?: unknown };
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: unknown };
  } catch {
    return false;
  }
  return header.alg === 'RS256' && verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
}

/** The resource scopes of a scope parameter: OpenID scopes dropped, bare names qualified with Graph. */
function resourceScopes(scope: string): string[] {
  return scope.split(' ').filter((s) => s !== '' && !OIDC_SCOPES.has(s)).map((s) => (s.includes('://') ? s : `${DEFAULT_RESOURCE}/${s}`));
}

function resourceOf(scope: string): string {
  return new URL(scope).origin;
}

/** A stable object id per user, as Entra has. */
function oidOf(upn: string): string {
  const h = createHash('sha256').update(upn.toLowerCase()).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Mailbox a token may act for in the introspection answer: tests map client ids to mailboxes. */
export const tokenMailboxes = new Map<string, string>();
function mailboxOf(t: IssuedToken): string | undefined {
  return t.upn ?? tokenMailboxes.get(t.clientId);
}

/** Verifies an RS256/PS256 client assertion JWT against the registered certificate. */
function verifyAssertion(jwt: string, certificatePem: string, clientId: string): boolean {
  const [h, p, s] = jwt.split('.');
  if (!h || !p || !s) return false;
  const header = JSON.parse(Buffer.from(h, 'base64url').toString()) as { alg?: string; x5t?: string; 'x5t#S256'?: string };
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as { iss?: string; sub?: string; exp?: number };
  if (payload.iss !== clientId || payload.sub !== clientId || !payload.exp || payload.exp * 1000 < Date.now()) return false;
  const cert = new X509Certificate(certificatePem);
  const der = cert.raw;
  const thumbprints = [createHash('sha1').update(der).digest('base64url'), createHash('sha256').update(der).digest('base64url')];
  if (header.x5t && !thumbprints.includes(header.x5t) && header['x5t#S256'] && !thumbprints.includes(header['x5t#S256'])) return false;
  const key = createPublicKey(certificatePem);
  const data = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s, 'base64url');
  if (header.alg === 'RS256') return verify('sha256', data, key, signature);
  if (header.alg === 'PS256') return verify('sha256', data, { key, padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }, signature);
  return false;
}
