import { z } from 'zod';
import type { Profile } from '../config/profiles.js';
import { API_NAMES, apiScope, type Api, type PermissionNeed } from '../transports/descriptor.js';
import { transportSides } from '../transports/index.js';

/** A token the profile needs, for one API, and what it must allow there. */
export interface ScopeNeed {
  /** The API's name as the Entra portal lists it under API permissions. */
  api: (typeof API_NAMES)[Api];
  scope: string;
  needs: PermissionNeed[];
}

/** The app-only tokens a profile needs, one per API (Graph first), with what its transports' descriptors say each must allow. */
export function scopesNeeded(profile: Profile): ScopeNeed[] {
  const needs = transportSides(profile).flatMap((side) => side.permissions(profile));
  return (['graph', 'exchange'] as const).flatMap((api) => {
    const mine = needs.filter((n) => n.api === api);
    return mine.length > 0 ? [{ api: API_NAMES[api], scope: apiScope(api, profile.endpoints), needs: mine }] : [];
  });
}

/** The claims of an access token that say what it allows: `roles` (app-only) and `scp` (delegated). */
export interface TokenClaims {
  roles: string[];
  scopes: string[];
}

const payloadSchema = z.object({
  roles: z.array(z.string()).optional(),
  scp: z.string().optional(),
});

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]*$/;

/**
 * The permission claims of a JWT access token, or undefined for a token that is not a JWT.
 * Microsoft documents access tokens as opaque to clients (they may be encrypted), so this
 * only informs the diagnosis; the service's answer is what decides.
 */
export function readTokenClaims(token: string): TokenClaims | undefined {
  const payload = JWT_SHAPE.exec(token)?.[1];
  if (payload === undefined) return undefined;
  const json = parseJson(Buffer.from(payload, 'base64url').toString('utf8'));
  const claims = payloadSchema.safeParse(json);
  if (!claims.success) return undefined;
  return { roles: claims.data.roles ?? [], scopes: claims.data.scp?.split(' ').filter(Boolean) ?? [] };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    // Three dot-separated base64url parts that are not JSON: an opaque token, which is a valid answer.
    return undefined;
  }
}

export interface PermissionCheck {
  /** One line on what the token carries, e.g. "JWT, roles Mail.Send: Mail.Send present". */
  summary: string;
  /** One sentence per missing permission, naming what to grant. */
  missing: string[];
  /** Whether the token shows this role (false also when the token cannot be read). */
  has(role: string): boolean;
}

export function checkPermissions(need: ScopeNeed, claims: TokenClaims | undefined): PermissionCheck {
  if (claims === undefined) {
    return { summary: 'not a JWT, so its permissions cannot be read here (the connection steps test them)', missing: [], has: () => false };
  }
  const has = (role: string) => claims.roles.includes(role);
  const grants = (n: PermissionNeed) => n.anyOf.some(has);
  const carried = [
    claims.roles.length > 0 ? `roles ${claims.roles.join(', ')}` : 'no roles',
    ...(claims.scopes.length > 0 ? [`scp ${claims.scopes.join(' ')}`] : []),
  ].join(', ');
  const present = [...new Set(need.needs.filter(grants).map((n) => n.anyOf.find(has)))];
  const missing = need.needs
    .filter((n) => !grants(n))
    .map(
      (n) =>
        `The ${need.api} token has no ${n.anyOf.join(' or ')} role, needed to ${n.purpose}: add the ${need.api} application permission ${n.anyOf[0]} to the app registration and grant admin consent` +
        (claims.scopes.length > 0 ? ' (this token carries delegated scopes: the profile needs an app-only token).' : '.') +
        // Exchange Online's RBAC for Applications grants Graph mail access per mailbox in Exchange, not in Entra: no role claim shows it.
        (need.api === API_NAMES.graph && claims.scopes.length === 0
          ? ` If the access is granted in Exchange Online instead (RBAC for Applications, role "Application ${n.anyOf[0]}" scoped to the mailbox), the token carries no role and this is expected: the connection steps below test the grant.`
          : ''),
    );
  return {
    summary: `JWT, ${carried}${present.length > 0 ? `: ${present.join(', ')} present` : ''}`,
    missing,
    has,
  };
}
