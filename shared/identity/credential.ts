import type { TokenCredential } from '@azure/core-auth';
import { authorityOptions } from '../config/cloud.js';
import type { Profile } from '../config/profiles.js';
import { MailError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { azureProxyOptions } from '../network/azureClients.js';
import { urlTarget, type ProxyRouter } from '../network/proxy.js';
import { proxyMailError } from '../network/proxyErrors.js';
import type { SecretStore } from '../secrets/store.js';
import { RefreshTokenCredential } from './delegated.js';
import { createFederatedCredential } from './federated.js';

type Identity = typeof import('@azure/identity');

/** @azure/identity is loaded when a profile first needs a token, not at start-up. */
export function identitySdk(): Identity {
  return require('@azure/identity') as Identity;
}

export interface ProfileCredentialOptions {
  abortSignal?: AbortSignal;
  /** Where a delegated credential reports storing a rotated refresh token. @default console */
  logger?: Logger;
  /** Where the token requests go (the managed identity endpoint is always reached directly). @default directly */
  proxy?: ProxyRouter;
  /**
   * AZURE_CLIENT_ID: the user-assigned managed identity of `managedIdentity` and `federated` profiles
   * that name none, as DefaultAzureCredential uses it (in Azure, infra/ sets it to the app's one
   * identity, and a Flex Consumption app has no system-assigned one). @default the system-assigned identity
   */
  defaultManagedIdentityClientId?: string;
}

/** Builds the credential for a profile's auth mode, reading its secret from the store. */
export async function createProfileCredential(profile: Profile, secrets: SecretStore, credentialOptions: ProfileCredentialOptions = {}): Promise<TokenCredential> {
  const auth = profile.auth;
  const signal = credentialOptions.abortSignal;
  if (auth.type === 'delegated') return new RefreshTokenCredential({ ...profile, auth }, secrets, { logger: credentialOptions.logger ?? createLogger(), proxy: credentialOptions.proxy });
  const sdk = identitySdk();
  const proxyOptions = azureProxyOptions(credentialOptions.proxy);
  const options = { ...authorityOptions(profile.endpoints.authority), ...proxyOptions };
  switch (auth.type) {
    case 'clientSecret': {
      const secret = await secrets.getSecret(auth.secret, { abortSignal: signal });
      return new sdk.ClientSecretCredential(profile.tenantId!, profile.clientId!, secret, options);
    }
    case 'certificate': {
      const pem = await secrets.getSecret(auth.certificate, { abortSignal: signal });
      return new sdk.ClientCertificateCredential(profile.tenantId!, profile.clientId!, { certificate: pem }, options);
    }
    case 'managedIdentity': {
      const clientId = auth.clientId ?? credentialOptions.defaultManagedIdentityClientId;
      return clientId ? new sdk.ManagedIdentityCredential({ clientId, ...proxyOptions }) : new sdk.ManagedIdentityCredential(proxyOptions);
    }
    case 'federated':
      return createFederatedCredential({ ...profile, auth }, sdk, options, credentialOptions.defaultManagedIdentityClientId);
    case 'none':
      throw new MailError('ECONFIG', `profile "${profile.name}" has auth type "none" and cannot obtain tokens`, {
        profile: profile.name,
        field: 'auth.type',
        hint: 'Use clientSecret, certificate, federated, managedIdentity or delegated for Graph, SMTP, IMAP and POP3.',
      });
  }
}

/** The secrets a profile's credential was built from: re-read after an auth failure. */
export function profileSecretNames(profile: Profile): string[] {
  const auth = profile.auth;
  if (auth.type === 'clientSecret') return [auth.secret];
  if (auth.type === 'certificate') return [auth.certificate];
  // A refresh token re-read picks up a new consent, or a rotation written by another instance.
  if (auth.type === 'delegated') return auth.secret === undefined ? [auth.refreshToken] : [auth.secret, auth.refreshToken];
  return [];
}

/**
 * Entra error codes (https://learn.microsoft.com/entra/identity-platform/reference-error-codes)
 * and managed identity endpoint answers worth a specific hint.
 */
const TOKEN_ERROR_HINTS: Array<[RegExp, string | ((profile: Profile) => string)]> = [
  [/AADSTS7000215|AADSTS7000222/, 'The client secret is wrong or expired: create a new one under Certificates & secrets and update the secret store.'],
  [/AADSTS700027|AADSTS700023/, 'The certificate is not registered on the app or has expired: upload its public key under Certificates & secrets.'],
  [/AADSTS700016/, 'No application with this clientId exists in the tenant: check clientId and tenantId, or admin-consent a multi-tenant app in this tenant.'],
  [/AADSTS90002|AADSTS900023/, 'The tenant was not found: check tenantId (a GUID or a verified domain).'],
  [/AADSTS65001|AADSTS650057/, 'The app lacks consent for the requested permission: grant admin consent under API permissions.'],
  [/AADSTS500011/, 'The resource principal is missing in the tenant (e.g. Office 365 Exchange Online): check the cloud setting and that Exchange Online is licensed.'],
  [/AADSTS7000112|AADSTS700024/, 'The app is disabled or the assertion is not valid yet: check the app and the machine clock.'],
  // A federated profile's managed identity token matched none of the app registration's federated identity credentials, by issuer, audience, subject, or all.
  [/AADSTS700211\b/, (p) => `No federated credential on the app registration trusts the managed identity's issuer: its issuer must be ${p.endpoints.authority}/<tenant id>/v2.0 of the identity's tenant, which must be the app registration's own.`],
  [/AADSTS700212\b/, (p) => `The app registration's federated credential does not accept the audience ${p.endpoints.tokenExchangeAudience}, which cloud "${p.cloud}" asks for: set its audience to that value.`],
  [/AADSTS700213\b|AADSTS7002138\b/, (p) => `No federated credential on the app registration has this managed identity as its subject: add one (scenario "Managed identity") for ${managedIdentityOf(p)}; its subject is the identity's object (principal) id, not its client id, and matching is case-sensitive.`],
  [/AADSTS70021\b/, (p) => `No federated credential on the app registration matches the managed identity's token: add one for ${managedIdentityOf(p)} with issuer ${p.endpoints.authority}/<its tenant id>/v2.0, subject its object (principal) id and audience ${p.endpoints.tokenExchangeAudience}.`],
  // App Service's identity endpoint answers 400 with this text for a user-assigned identity the app does not have.
  [/Unable to load the proper Managed Identity/, (p) => `The user-assigned managed identity with this client id is not attached to the Function App: add it under Identity, or correct ${p.auth.type === 'federated' ? 'auth.managedIdentityClientId' : 'auth.clientId'}.`],
];

function managedIdentityOf(profile: Profile): string {
  const clientId = profile.auth.type === 'federated' ? profile.auth.managedIdentityClientId : undefined;
  return clientId === undefined ? 'the Function App\'s system-assigned identity' : `the user-assigned identity with client id ${clientId} (auth.managedIdentityClientId)`;
}

export function translateTokenError(profile: Profile, error: unknown, proxy?: ProxyRouter): MailError {
  if (error instanceof MailError) return error;
  const authority = urlTarget(profile.endpoints.authority);
  const context = { server: proxy?.isDirect(authority) === false ? proxy.server : undefined, target: authority, profile: profile.name };
  const noted = proxy?.takeFailure();
  const proxied = proxyMailError(error, context) ?? (noted && proxyMailError(noted, context));
  if (proxied) return proxied;
  const message = error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : '';
  const known = TOKEN_ERROR_HINTS.find(([pattern]) => pattern.test(message))?.[1];
  const hint =
    (typeof known === 'function' ? known(profile) : known) ??
    (name === 'CredentialUnavailableError'
      ? 'This credential is not available here (no managed identity endpoint?): check the auth type for this host.'
      : 'Check tenantId, clientId and the secret or certificate of this profile, and the authority endpoint.');
  const firstLine = message.split('\n')[0] ?? message;
  return new MailError('ETOKEN', `profile "${profile.name}": token request failed: ${firstLine}`, {
    profile: profile.name,
    hint,
    providerCode: /AADSTS\d+/.exec(message)?.[0],
    cause: error,
  });
}
