import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpsPeer, readBody, sendJson as send } from './httpsServer.js';
import type { TokenEndpointPeer } from './tokenEndpoint.js';

/** The audience Key Vault accepts tokens for, in every public-cloud vault. */
export const VAULT_RESOURCE = 'https://vault.azure.net';

export interface VaultRequest {
  method: string;
  /** Path without the query, e.g. /secrets/support-client-secret/ */
  path: string;
  apiVersion?: string;
  /** True when the request carried a bearer token this vault accepted. */
  authorized: boolean;
  status: number;
}

interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  created: number;
  /** Unix seconds: Key Vault's `exp` attribute. */
  expires?: number;
}

/**
 * A Key Vault secrets REST stand-in on https://127.0.0.1:<port> for the real SecretClient:
 * the bearer challenge (401 + WWW-Authenticate naming the authority and tenant), tokens
 * checked against the TokenEndpointPeer for the vault audience, versioned secrets, and
 * Key Vault's error bodies. https://learn.microsoft.com/rest/api/keyvault/secrets
 */
export class KeyVaultPeer extends HttpsPeer {
  readonly requests: VaultRequest[] = [];
  /** When true every authorized request is answered 403 Forbidden, as without an access policy or RBAC role. */
  forbidden = false;
  private readonly secrets = new Map<string, SecretVersion[]>();

  constructor(private readonly entra: TokenEndpointPeer, private readonly tenantId: string) {
    super();
  }

  /** Stores a new version of a secret (what `az keyvault secret set [--expires]` does) and returns the version id. */
  setSecret(name: string, value: string, options: { contentType?: string; expiresOn?: Date } = {}): string {
    const version = randomBytes(16).toString('hex');
    const versions = this.secrets.get(name) ?? [];
    const expires = options.expiresOn === undefined ? undefined : Math.floor(options.expiresOn.getTime() / 1000);
    versions.push({ version, value, contentType: options.contentType, created: Math.floor(Date.now() / 1000), ...(expires !== undefined && { expires }) });
    this.secrets.set(name, versions);
    return version;
  }

  /** Requests that read a secret (GET /secrets/{name}/...), authorized or not. */
  secretReads(name?: string): VaultRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && (name === undefined ? r.path.startsWith('/secrets/') : r.path.startsWith(`/secrets/${name}/`)));
  }

  protected errorBody(error: unknown): unknown {
    return { error: { code: 'InternalServerError', message: String(error) } };
  }

  protected async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    const method = req.method ?? 'GET';
    const record = (status: number, authorized: boolean) =>
      this.requests.push({ method, path: url.pathname, apiVersion: url.searchParams.get('api-version') ?? undefined, authorized, status });

    const token = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !this.entra.validate(token, VAULT_RESOURCE)) {
      record(401, false);
      // Key Vault answers an anonymous or unacceptable request with this challenge; the client
      // takes the tenant from the authorization URL and the scope from the resource.
      res.setHeader('WWW-Authenticate', `Bearer authorization="${this.entra.url}/${this.tenantId}", resource="${VAULT_RESOURCE}"`);
      return send(res, 401, { error: { code: 'Unauthorized', message: token ? 'AKV10032: Invalid issuer or audience.' : 'AKV10000: Request is missing a Bearer or PoP token.' } });
    }
    if (!url.searchParams.get('api-version')) {
      record(400, true);
      return send(res, 400, { error: { code: 'BadParameter', message: 'The api-version query parameter is required.' } });
    }
    if (this.forbidden) {
      record(403, true);
      return send(res, 403, {
        error: { code: 'Forbidden', message: 'Caller is not authorized to perform action on resource.', innererror: { code: 'ForbiddenByRbac' } },
      });
    }

    const route = /^\/secrets\/([0-9a-zA-Z-]+)(?:\/([0-9a-f]*))?\/?$/.exec(url.pathname);
    if (!route) {
      record(404, true);
      return send(res, 404, { error: { code: 'NotFound', message: `no route for ${method} ${url.pathname}` } });
    }
    const name = route[1]!;
    const versionId = route[2] || undefined;
    if (method === 'PUT' && versionId === undefined) {
      const input = JSON.parse(body || '{}') as { value?: unknown; contentType?: unknown; attributes?: { exp?: unknown } };
      if (typeof input.value !== 'string') {
        record(400, true);
        return send(res, 400, { error: { code: 'BadParameter', message: 'Property value is required.' } });
      }
      const exp = input.attributes?.exp;
      const version = this.setSecret(name, input.value, {
        ...(typeof input.contentType === 'string' && { contentType: input.contentType }),
        ...(typeof exp === 'number' && { expiresOn: new Date(exp * 1000) }),
      });
      record(200, true);
      return send(res, 200, this.bundle(name, this.secrets.get(name)!.find((v) => v.version === version)!));
    }
    if (method === 'GET') {
      const versions = this.secrets.get(name) ?? [];
      const found = versionId === undefined ? versions.at(-1) : versions.find((v) => v.version === versionId);
      if (!found) {
        record(404, true);
        const which = versionId === undefined ? `(name/id) ${name}` : `(name/id) ${name}/${versionId}`;
        return send(res, 404, { error: { code: 'SecretNotFound', message: `A secret with ${which} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.` } });
      }
      record(200, true);
      return send(res, 200, this.bundle(name, found));
    }
    record(405, true);
    return send(res, 405, { error: { code: 'MethodNotAllowed', message: `${method} is not supported on ${url.pathname}` } });
  }

  private bundle(name: string, secret: SecretVersion): unknown {
    return {
      value: secret.value,
      ...(secret.contentType ? { contentType: secret.contentType } : {}),
      id: `${this.url}/secrets/${name}/${secret.version}`,
      attributes: { enabled: true, created: secret.created, updated: secret.created, ...(secret.expires !== undefined && { exp: secret.expires }), recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      tags: {},
    };
  }
}
