import { MailError } from '../errors.js';
import { CLOUD_NAMES, type CloudName } from './cloud.js';
import { storageConnectionSetting, type StorageConnection } from './storageSettings.js';
import { managedIdentityEndpoints, NoProxy, ProxyRouter, proxySetting, type ConnectTarget, type ProxyServer } from '../network/proxy.js';

/**
 * A whole-number app setting, at least `min`: the default when unset or empty, ECONFIG naming
 * the setting otherwise. `Number()` alone would turn "35MB" into NaN, and a limit compared with
 * NaN never applies.
 */
/** The wait after a queued send's first failed attempt, before jitter, unless SEND_RETRY_BASE_SECONDS says otherwise. */
export const DEFAULT_SEND_RETRY_BASE_SECONDS = 30;
/** How long one token request (the secret's read included) may take, unless TOKEN_TIMEOUT_SECONDS says otherwise. */
export const DEFAULT_TOKEN_TIMEOUT_SECONDS = 60;
/** How long a Graph lookup of an unknown outcome waits for the sent copy in Sent Items (the pauses of shared/transports/graph/graphSentItems.ts add up to it). */
export const DEFAULT_SENT_ITEMS_LOOKUP_SECONDS = 21;

export function wholeNumberSetting(env: NodeJS.ProcessEnv, name: string, options: { default: number; min: number }): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return options.default;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < options.min) {
    throw new MailError('ECONFIG', `${name} must be a whole number of at least ${options.min}, not "${raw}"`, {
      field: name,
      hint: `Fix or remove the app setting ${name} (default ${options.default}).`,
    });
  }
  return value;
}

/** A true/false app setting: the default when unset or empty, ECONFIG for anything else than true or false (any case). */
export function booleanSetting(env: NodeJS.ProcessEnv, name: string, options: { default: boolean }): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return options.default;
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new MailError('ECONFIG', `${name} must be true or false, not "${env[name]}"`, { field: name, hint: `Set ${name} to true or false, or remove it (default ${options.default}).` });
}

/** An https URL app setting, undefined when unset or empty; ECONFIG naming it when it is not one. */
export function httpsUrlSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return undefined;
  if (!URL.canParse(raw) || new URL(raw).protocol !== 'https:') {
    throw new MailError('ECONFIG', `${name} must be an https URL, not "${raw}"`, { field: name, hint: `Set ${name} to an https URL such as the one the Azure portal shows, or remove it.` });
  }
  return raw;
}

/** A positive number (fractions allowed), the default when unset or empty; ECONFIG naming the setting otherwise. */
export function positiveNumberSetting(env: NodeJS.ProcessEnv, name: string, options: { default: number; unit: string }): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return options.default;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new MailError('ECONFIG', `${name} must be a positive number of ${options.unit}, not "${raw}"`, { field: name, hint: `Fix or remove the app setting (default ${options.default}).` });
  }
  return value;
}

/** One of `values`, the first being the default when unset or empty; ECONFIG naming the setting otherwise. */
export function choiceSetting<const T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly [T, ...T[]]): T {
  const raw = env[name]?.trim();
  if (raw === undefined || raw === '') return values[0];
  if ((values as readonly string[]).includes(raw)) return raw as T;
  throw new MailError('ECONFIG', `${name} must be ${values.map((v) => `"${v}"`).join(' or ')}, not "${raw}"`, { field: name, hint: `Fix or remove the app setting (default ${values[0]}).` });
}

/** A text setting, undefined when unset or empty. */
function textSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

/**
 * The app settings the app reads besides the profiles document (MAIL_PROFILES, MAIL_PROFILES_FILE,
 * MAIL_DIR: shared/config/profiles.ts) and the secrets the environment store resolves. Parsed
 * once, when the runtime is made at start-up; the first invalid one is ECONFIG naming it.
 * Nothing reads process.env per request: it asks the runtime's settings.
 */
export interface AppSettings {
  /** AzureWebJobsStorage, or the identity-based AzureWebJobsStorage__* settings: the state's storage account; required where state is first used, since a file-only CLI send needs none. */
  storage?: StorageConnection;
  /** SEND_MAX_BYTES (default 35 MiB) and SEND_MAX_RECIPIENTS (default 500): per-profile limits' defaults. */
  sendMaxBytes: number;
  sendMaxRecipients: number;
  /** SEND_MAX_ATTACHMENTS (default 250, Exchange Online's own), SEND_MAX_HEADERS (custom headers, default 100) and SEND_MAX_HEADER_BYTES (their names and values, default 256 KiB). */
  sendMaxAttachments: number;
  sendMaxHeaders: number;
  sendMaxHeaderBytes: number;
  /** SEND_MODE: how POST /api/send answers when the request does not say. */
  sendMode: 'sync' | 'queued';
  /** SEND_MAX_ATTEMPTS: attempts per queued message before it fails for good. */
  sendMaxAttempts: number;
  /** The wait after a queued send's first failed attempt, before jitter; doubled after each further one (SEND_RETRY_BASE_SECONDS). */
  sendRetryBaseSeconds: number;
  /**
   * SEND_SYNC_HOLD_SECONDS (default 600, host.json's functionTimeout): how long a sync send with an
   * Idempotency-Key holds its row. A repeat after it settles an attempt whose request died instead
   * of answering 409; the attempt itself gives up at half of it.
   */
  sendSyncHoldSeconds: number;
  /** POLL_MAX_DURATION_SECONDS: a poll stops between messages after this long (below the host's 5-minute timeout). */
  pollMaxDurationSeconds: number;
  /** HEALTH_STALE_AFTER_SECONDS: a receiving profile with no completed poll for this long is stale. */
  healthStaleAfterSeconds: number;
  /** CREDENTIAL_EXPIRY_WARNING_DAYS: a client secret or certificate this close to its expiry is reported as expiring and warned about in the log; 0: only once expired. */
  credentialExpiryWarningDays: number;
  /** WEBHOOK_TIMEOUT_MS and WEBHOOK_MAX_ATTEMPTS: per webhook delivery. */
  webhookTimeoutMs: number;
  webhookMaxAttempts: number;
  /** TOKEN_TIMEOUT_SECONDS: how long one token request may take before the operations waiting for it fail with a transient ETOKEN. */
  tokenTimeoutSeconds: number;
  /** SENT_ITEMS_LOOKUP_SECONDS: how long a Graph lookup of a send whose outcome is unknown waits for the copy to be filed in Sent Items before it concludes "not sent". */
  sentItemsLookupSeconds: number;
  /** SECRET_CACHE_TTL_SECONDS: 0 turns the secret cache off. */
  secretCacheTtlSeconds: number;
  /** KEY_VAULT_URL: secrets from Key Vault when set, else from the app settings. */
  keyVaultUrl?: string;
  keyVaultDisableChallengeResourceVerification: boolean;
  /** AZURE_CLIENT_ID: the user-assigned managed identity (of DefaultAzureCredential, and of managedIdentity and federated profiles that name none). */
  azureClientId?: string;
  /** AZURE_AUTHORITY_HOST: the authority DefaultAzureCredential uses for Key Vault. */
  azureAuthorityHost?: string;
  /** OAUTH_REDIRECT_URI and OAUTH_STATE_KEY: delegated consent; the key is checked where consent uses it. */
  oauthRedirectUri?: string;
  oauthStateKey?: string;
  /** DEFAULT_PROFILE: checked against the profiles by the runtime. */
  defaultProfile?: string;
  /** API_TENANT_ID and API_AUDIENCE: whose Entra access tokens callers present, and for which API (required once a caller has an entraAppId). */
  apiTenantId?: string;
  apiAudience?: string;
  /** API_CLOUD: the cloud whose authority issues them, unless AZURE_AUTHORITY_HOST names one. */
  apiCloud: CloudName;
  /** HTTPS_PROXY (or https_proxy): the proxy every outbound connection goes through, unless a profile names its own. */
  httpsProxy?: ProxyServer;
  /** NO_PROXY (or no_proxy): the hosts reached without a proxy. */
  noProxy: NoProxy;
  /** IDENTITY_ENDPOINT / MSI_ENDPOINT (set by the platform): the managed identity endpoint, always reached directly. */
  managedIdentityEndpoints: ConnectTarget[];
  /** NOTIFICATION_URL: the app's public https base URL, where Graph posts change notifications (required once a profile has receive.push). */
  notificationUrl?: string;
}

export const DEFAULT_HEALTH_STALE_AFTER_SECONDS = 300;

/** Where the app's own connections go (Key Vault, Storage): through HTTPS_PROXY, but directly to NO_PROXY's hosts and the managed identity endpoint. */
export function appProxyRouter(settings: AppSettings): ProxyRouter {
  return new ProxyRouter({ server: settings.httpsProxy, noProxy: settings.noProxy, direct: settings.managedIdentityEndpoints });
}

export function parseSettings(env: NodeJS.ProcessEnv): AppSettings {
  return {
    storage: storageConnectionSetting(env),
    sendMaxBytes: wholeNumberSetting(env, 'SEND_MAX_BYTES', { default: 35 * 1024 * 1024, min: 1 }),
    sendMaxRecipients: wholeNumberSetting(env, 'SEND_MAX_RECIPIENTS', { default: 500, min: 1 }),
    sendMaxAttachments: wholeNumberSetting(env, 'SEND_MAX_ATTACHMENTS', { default: 250, min: 0 }),
    sendMaxHeaders: wholeNumberSetting(env, 'SEND_MAX_HEADERS', { default: 100, min: 0 }),
    sendMaxHeaderBytes: wholeNumberSetting(env, 'SEND_MAX_HEADER_BYTES', { default: 256 * 1024, min: 1 }),
    sendMode: choiceSetting(env, 'SEND_MODE', ['sync', 'queued']),
    sendMaxAttempts: wholeNumberSetting(env, 'SEND_MAX_ATTEMPTS', { default: 5, min: 1 }),
    sendRetryBaseSeconds: wholeNumberSetting(env, 'SEND_RETRY_BASE_SECONDS', { default: DEFAULT_SEND_RETRY_BASE_SECONDS, min: 1 }),
    sendSyncHoldSeconds: wholeNumberSetting(env, 'SEND_SYNC_HOLD_SECONDS', { default: 600, min: 2 }),
    pollMaxDurationSeconds: positiveNumberSetting(env, 'POLL_MAX_DURATION_SECONDS', { default: 240, unit: 'seconds' }),
    healthStaleAfterSeconds: wholeNumberSetting(env, 'HEALTH_STALE_AFTER_SECONDS', { default: DEFAULT_HEALTH_STALE_AFTER_SECONDS, min: 1 }),
    credentialExpiryWarningDays: wholeNumberSetting(env, 'CREDENTIAL_EXPIRY_WARNING_DAYS', { default: 30, min: 0 }),
    webhookTimeoutMs: wholeNumberSetting(env, 'WEBHOOK_TIMEOUT_MS', { default: 10_000, min: 1 }),
    webhookMaxAttempts: wholeNumberSetting(env, 'WEBHOOK_MAX_ATTEMPTS', { default: 4, min: 1 }),
    tokenTimeoutSeconds: wholeNumberSetting(env, 'TOKEN_TIMEOUT_SECONDS', { default: DEFAULT_TOKEN_TIMEOUT_SECONDS, min: 1 }),
    sentItemsLookupSeconds: wholeNumberSetting(env, 'SENT_ITEMS_LOOKUP_SECONDS', { default: DEFAULT_SENT_ITEMS_LOOKUP_SECONDS, min: 0 }),
    secretCacheTtlSeconds: wholeNumberSetting(env, 'SECRET_CACHE_TTL_SECONDS', { default: 300, min: 0 }),
    keyVaultUrl: httpsUrlSetting(env, 'KEY_VAULT_URL'),
    keyVaultDisableChallengeResourceVerification: booleanSetting(env, 'KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION', { default: false }),
    azureClientId: textSetting(env, 'AZURE_CLIENT_ID'),
    azureAuthorityHost: httpsUrlSetting(env, 'AZURE_AUTHORITY_HOST'),
    oauthRedirectUri: textSetting(env, 'OAUTH_REDIRECT_URI'),
    oauthStateKey: env.OAUTH_STATE_KEY,
    defaultProfile: textSetting(env, 'DEFAULT_PROFILE'),
    apiTenantId: textSetting(env, 'API_TENANT_ID'),
    apiAudience: textSetting(env, 'API_AUDIENCE'),
    apiCloud: choiceSetting(env, 'API_CLOUD', CLOUD_NAMES as [CloudName, ...CloudName[]]),
    httpsProxy: proxySetting(env, 'HTTPS_PROXY'),
    noProxy: env.NO_PROXY?.trim() ? NoProxy.parse(env.NO_PROXY, 'NO_PROXY') : NoProxy.parse(env.no_proxy, 'no_proxy'),
    managedIdentityEndpoints: managedIdentityEndpoints(env),
    notificationUrl: httpsUrlSetting(env, 'NOTIFICATION_URL'),
  };
}
