import { createHash, timingSafeEqual } from 'node:crypto';
import { resolveEndpoints } from '../config/cloud.js';
import type { Caller, Profile } from '../config/profiles.js';
import { MailError } from '../errors.js';
import { addressAllowed } from '../mail/address.js';
import { registerSensitive } from '../redact.js';
import type { MailRuntime } from '../runtime.js';
import { EntraTokenVerifier } from './entraTokens.js';

/** The header a key caller sends its key in (RFC 9110 field names are case-insensitive). */
export const CALLER_KEY_HEADER = 'X-Api-Key';

/** The request headers a caller is known by. */
export interface CallerHeaders {
  get(name: string): string | null;
}

/**
 * Who is calling, when the profiles document names callers: the Entra app whose bearer token
 * validates, or the key caller whose key matches; undefined when no callers are configured (then
 * the function key alone guards the app, as before callers existed). None or an invalid one is
 * 401 with a WWW-Authenticate challenge; `admin: true` callers only where `admin` is asked for (403).
 */
export async function authenticateCaller(runtime: MailRuntime, headers: CallerHeaders, options: { admin?: boolean } = {}): Promise<Caller | undefined> {
  const callers = [...runtime.profiles.callers.values()];
  if (callers.length === 0) return undefined;
  const caller = await identify(runtime, callers, headers);
  if (options.admin && !caller.admin) {
    throw new MailError('EFORBIDDEN', `caller "${caller.name}" may not use this function`, { hint: 'Only callers with "admin": true in the profiles document may use it.' });
  }
  return caller;
}

function challenge(callers: readonly Caller[]): string {
  const schemes: string[] = [];
  if (callers.some((c) => c.entraAppId !== undefined)) schemes.push('Bearer realm="m365-mail"');
  if (callers.some((c) => c.keySecret !== undefined)) schemes.push(`ApiKey realm="m365-mail", header="${CALLER_KEY_HEADER}"`);
  return schemes.join(', ');
}

/**
 * How long a credential a request presented stays on the redaction list: the length of the
 * request, with room. Not for ever, since anyone may present any number of them; the caller
 * keys themselves are registered by the secret store when read, with no expiry.
 */
const PRESENTED_CREDENTIAL_MS = 10 * 60 * 1000;

async function identify(runtime: MailRuntime, callers: readonly Caller[], headers: CallerHeaders): Promise<Caller> {
  // A bearer token counts only where an Entra caller could hold it: with key callers alone, a
  // token (a gateway's, a client's habit) is no credential of this app, and no cause for ECONFIG.
  const bearer = callers.some((c) => c.entraAppId !== undefined) ? /^Bearer\s+(\S+)\s*$/i.exec(headers.get('authorization') ?? '')?.[1] : undefined;
  const key = headers.get(CALLER_KEY_HEADER.toLowerCase()) ?? undefined;
  const unauthenticated = (message: string, hint: string) => new MailError('EUNAUTHENTICATED', message, { hint, challenge: challenge(callers) });
  if (bearer !== undefined) {
    registerSensitive(bearer, { expiresAt: Date.now() + PRESENTED_CREDENTIAL_MS });
    const payload = await verifier(runtime).verify(bearer);
    // v2.0 tokens name the client in azp, v1.0 tokens in appid.
    const appId = typeof payload.azp === 'string' ? payload.azp : typeof payload.appid === 'string' ? payload.appid : undefined;
    const caller = callers.find((c) => c.entraAppId !== undefined && appId !== undefined && c.entraAppId.toLowerCase() === appId.toLowerCase());
    if (!caller) throw unauthenticated('the bearer token is valid but its app is not a caller of this app', 'Add the app to callers with its application id as entraAppId.');
    const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    const missing = (caller.roles ?? []).filter((r) => !roles.includes(r));
    if (missing.length > 0) throw new MailError('EFORBIDDEN', `caller "${caller.name}" lacks the app role ${missing.join(', ')}`, { hint: 'Assign the role to the calling app (API permissions, admin consent) and get a new token.' });
    return caller;
  }
  if (key !== undefined && key !== '') {
    registerSensitive(key, { expiresAt: Date.now() + PRESENTED_CREDENTIAL_MS });
    const given = digest(key);
    for (const caller of callers) {
      if (caller.keySecret === undefined) continue;
      // Compared as digests, so the time taken tells nothing of the key's length or content.
      if (timingSafeEqual(given, digest(await runtime.secrets.getSecret(caller.keySecret)))) return caller;
    }
    throw unauthenticated('the X-Api-Key is not a caller key of this app', 'Send the key kept in the secret store for your caller.');
  }
  throw unauthenticated('this app takes callers only: the request has no bearer token and no X-Api-Key', 'Send Authorization: Bearer <access token for this app\'s API>, or X-Api-Key: <your caller key>.');
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

function verifier(runtime: MailRuntime): EntraTokenVerifier {
  const { apiTenantId, apiAudience, azureAuthorityHost, apiCloud } = runtime.settings;
  if (apiTenantId === undefined || apiAudience === undefined) {
    throw new MailError('ECONFIG', 'a caller sent a bearer token, but API_TENANT_ID and API_AUDIENCE are not set', { field: apiTenantId === undefined ? 'API_TENANT_ID' : 'API_AUDIENCE', hint: 'Set API_TENANT_ID to the tenant of this app\'s registration and API_AUDIENCE to its application ID URI.' });
  }
  const authority = azureAuthorityHost ?? resolveEndpoints(apiCloud).authority;
  return runtime.once('callers.entraTokens', () => new EntraTokenVerifier({ authority, tenantId: apiTenantId, audience: apiAudience }));
}

/**
 * The profile a caller asks for, if it may use it. A caller that names none gets its only
 * profile. A profile it was not granted is 403 whether it exists or not, and the answer names
 * only the caller's own profiles. Without a caller, the runtime's own choice.
 */
export function profileForCaller(runtime: MailRuntime, caller: Caller | undefined, name: string | undefined): Profile {
  if (caller === undefined || caller.admin) return runtime.profile(name);
  const own = caller.profiles;
  const wanted = name ?? (own.length === 1 ? own[0] : undefined);
  if (wanted === undefined || !own.includes(wanted)) {
    throw new MailError('EFORBIDDEN', wanted === undefined ? `caller "${caller.name}" must name a profile` : `caller "${caller.name}" may not use profile "${wanted}"`, {
      field: 'profile',
      hint: own.length > 0 ? `Use one of your profiles: ${own.join(', ')}.` : 'This caller was granted no profile.',
    });
  }
  return runtime.profile(wanted);
}

/** A `from` outside the caller's own allowedFrom (which narrows the profile's) is 403. */
export function checkCallerFrom(caller: Caller | undefined, address: string): void {
  if (caller?.allowedFrom === undefined || addressAllowed(address, caller.allowedFrom)) return;
  throw new MailError('EFORBIDDEN', `caller "${caller.name}" may not send as ${address}`, { field: 'from', hint: `Use one of ${caller.allowedFrom.join(', ')}.` });
}
