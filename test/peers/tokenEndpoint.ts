import { createHash, createPublicKey, randomBytes, verify, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpsPeer, readBody, sendJson as json } from './httpsServer.js';

/**
 * An Entra-compatible token endpoint on https://127.0.0.1:<port>, enough for the real
 * @azure/identity (MSAL) clients: OpenID discovery, client credentials with a secret or a
 * certificate assertion, an App Service-style managed identity endpoint, and an RFC 7662
 * introspection endpoint for mail servers that validate bearer tokens (Dovecot).
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
}

export interface IssuedToken {
  token: string;
  clientId: string;
  tenantId: string;
  /** The resource of the scope, e.g. https://outlook.office365.com */
  audience: string;
  scope: string;
  expiresAt: number;
  via: 'clientSecret' | 'certificate' | 'managedIdentity';
}

export interface TokenRequestRecord {
  path: string;
  clientId?: string;
  scope?: string;
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
    const tokenPath = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (req.method === 'POST' && tokenPath) return this.clientCredentials(tokenPath[1]!, new URLSearchParams(body), url.pathname, res);
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

  private clientCredentials(tenantId: string, form: URLSearchParams, path: string, res: ServerResponse): void {
    const clientId = form.get('client_id') ?? '';
    const scope = form.get('scope') ?? '';
    const refuse = (status: number, error: string, code: number, description: string) => {
      this.requests.push({ path, clientId, scope, outcome: 'refused' });
      json(res, status, { error, error_description: `AADSTS${code}: ${description}`, error_codes: [code], timestamp: new Date().toISOString(), trace_id: randomBytes(8).toString('hex'), correlation_id: randomBytes(8).toString('hex') });
    };
    if (form.get('grant_type') !== 'client_credentials') return refuse(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    const app = this.apps.get(clientId);
    if (!app || app.tenantId !== tenantId) return refuse(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenantId}'.`);
    let via: IssuedToken['via'];
    if (form.has('client_secret')) {
      if (!app.secret || form.get('client_secret') !== app.secret) return refuse(401, 'invalid_client', 7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.');
      via = 'clientSecret';
    } else if (form.has('client_assertion')) {
      if (!app.certificatePem || !verifyAssertion(form.get('client_assertion') ?? '', app.certificatePem, clientId)) {
        return refuse(401, 'invalid_client', 700027, 'The certificate with identifier used to sign the client assertion is not registered on application.');
      }
      via = 'certificate';
    } else {
      return refuse(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
    }
    if (!/\/\.default$/.test(scope.split(' ').find((s) => s.endsWith('/.default')) ?? '')) return refuse(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.`);
    const resourceScope = scope.split(' ').find((s) => s.endsWith('/.default'))!;
    const token = this.issue({ clientId, tenantId, scope: resourceScope, via });
    this.requests.push({ path, clientId, scope, outcome: 'issued' });
    json(res, 200, { token_type: 'Bearer', expires_in: this.tokenLifetimeSeconds, ext_expires_in: this.tokenLifetimeSeconds, access_token: token.token });
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
    const token = this.issue({ clientId, tenantId: 'managed', scope: `${resource.replace(/\/$/, '')}/.default`, via: 'managedIdentity' });
    this.requests.push({ path: url.pathname, clientId, scope: resource, outcome: 'issued' });
    json(res, 200, { access_token: token.token, expires_on: String(Math.floor(token.expiresAt / 1000)), resource, token_type: 'Bearer', client_id: clientId });
  }

  private issue(input: { clientId: string; tenantId: string; scope: string; via: IssuedToken['via'] }): IssuedToken {
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
      expiresAt: Date.now() + this.tokenLifetimeSeconds * 1000,
    };
    this.issued.set(token.token, token);
    return token;
  }
}

/** Mailbox a token may act for in the introspection answer: tests map client ids to mailboxes. */
export const tokenMailboxes = new Map<string, string>();
function mailboxOf(t: IssuedToken): string | undefined {
  return tokenMailboxes.get(t.clientId);
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
