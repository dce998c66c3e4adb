import { authorityOptions } from '../config/cloud.js';
import { appProxyRouter, parseSettings, type AppSettings } from '../config/settings.js';
import { azureProxyOptions } from '../network/azureClients.js';
import { EnvironmentSecretStore } from './environment.js';
import { KeyVaultSecretStore } from './keyVault.js';
import { CachedSecretStore, type SecretStore } from './store.js';

/**
 * Key Vault when KEY_VAULT_URL is set (DefaultAzureCredential: managed identity in Azure,
 * the AZURE_* variables elsewhere), else the app settings. Cached SECRET_CACHE_TTL_SECONDS (default 300).
 */
export function createSecretStore(env: NodeJS.ProcessEnv = process.env, settings: AppSettings = parseSettings(env)): SecretStore {
  // 0 turns the cache off: every read goes to the store.
  const ttlSeconds = settings.secretCacheTtlSeconds;
  const vaultUrl = settings.keyVaultUrl;
  const authorityHost = settings.azureAuthorityHost;
  // The vault is the app's, not a profile's: HTTPS_PROXY and NO_PROXY decide, for the vault and its credential's token requests.
  const proxy = appProxyRouter(settings);
  const inner: SecretStore = vaultUrl
    ? new KeyVaultSecretStore({
        vaultUrl,
        proxy,
        disableChallengeResourceVerification: settings.keyVaultDisableChallengeResourceVerification,
        credential: async () => {
          // Loaded when the vault is first read, not at start-up (cold start).
          const { DefaultAzureCredential } = require('@azure/identity') as typeof import('@azure/identity');
          const proxyOptions = azureProxyOptions(proxy);
          return authorityHost ? new DefaultAzureCredential({ ...authorityOptions(authorityHost), ...proxyOptions }) : new DefaultAzureCredential(proxyOptions);
        },
      })
    : new EnvironmentSecretStore(env);
  return new CachedSecretStore(inner, { ttlMs: ttlSeconds * 1000 });
}
