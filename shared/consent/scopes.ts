import type { DelegatedProfile } from '../identity/delegated.js';
import { apiResource } from '../transports/descriptor.js';
import { transportSides } from '../transports/index.js';

/**
 * The delegated permissions consent asks for, as full scope URIs: `auth.scopes` when the profile
 * names them, else what its transports' descriptors need (SMTP.Send, IMAP.AccessAsUser.All and
 * POP.AccessAsUser.All on Exchange; Mail.Send and Mail.Read or Mail.ReadWrite on Graph).
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 */
export function consentScopes(profile: DelegatedProfile): string[] {
  if (profile.auth.scopes) return profile.auth.scopes;
  return transportSides(profile).flatMap((side) => side.delegated(profile).map((d) => `${apiResource(d.api, profile.endpoints)}/${d.permission}`));
}
