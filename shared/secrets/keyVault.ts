import type { SecretClient } from '@azure/keyvault-secrets';
import type { TokenCredential } from '@azure/core-auth';
import { MailError } from '../errors.js';
import { azureProxyOptions } from '../network/azureClients.js';
import { urlTarget, type ProxyRouter } from '../network/proxy.js';
import { proxyMailError } from '../network/proxyErrors.js';
import type { SecretRead, SecretReadOptions, SecretStore, SecretWriteResult } from './store.js';

export interface KeyVaultSecretStoreOptions {
  vaultUrl: string;
  /** Credential for the vault; default DefaultAzureCredential (managed identity in Azure, AZURE_* elsewhere). */
  credential: () => Promise<TokenCredential>;
  /** For vaults outside *.vault.azure.net (private clouds, test stand-ins). @default false */
  disableChallengeResourceVerification?: boolean;
  /** Where requests to the vault go. @default directly */
  proxy?: ProxyRouter;
}

/** Key Vault through @azure/keyvault-secrets; the SDK is loaded when the first secret is read. */
export class KeyVaultSecretStore implements SecretStore {
  readonly kind = 'keyVault' as const;
  /** A promise, so that the reads of a cold start share one client and one credential. */
  private client?: Promise<SecretClient>;

  constructor(private readonly options: KeyVaultSecretStoreOptions) {}

  private getClient(): Promise<SecretClient> {
    this.client ??= this.createClient();
    return this.client;
  }

  private async createClient(): Promise<SecretClient> {
    // Loaded on first use: the SDK costs cold-start time that profiles without Key Vault never pay.
    const { SecretClient: Client } = require('@azure/keyvault-secrets') as typeof import('@azure/keyvault-secrets');
    try {
      const credential = await this.options.credential();
      return new Client(this.options.vaultUrl, credential, {
        disableChallengeResourceVerification: this.options.disableChallengeResourceVerification ?? false,
        ...azureProxyOptions(this.options.proxy),
      });
    } catch (error) {
      this.client = undefined;
      throw error;
    }
  }

  /** A proxy's refusal is EPROXY naming the proxy; anything else is the vault's answer. */
  private translate(name: string, error: unknown, operation: 'read' | 'write'): MailError {
    const vault = urlTarget(this.options.vaultUrl);
    const proxy = this.options.proxy;
    return proxyMailError(error, { server: proxy?.isDirect(vault) === false ? proxy.server : undefined, target: vault }) ?? translateKeyVaultError(name, error, operation);
  }

  async getSecret(name: string, options: SecretReadOptions = {}): Promise<string> {
    return (await this.readSecret(name, options)).value;
  }

  /** The latest version, with its expiry date (the `exp` attribute) when one is set. */
  async readSecret(name: string, options: SecretReadOptions = {}): Promise<SecretRead> {
    const client = await this.getClient();
    try {
      const secret = await client.getSecret(name, { abortSignal: options.abortSignal });
      if (secret.value === undefined) throw new MailError('ESECRET_NOT_FOUND', `secret "${name}" has no value`, { field: name });
      const { expiresOn, version } = secret.properties;
      return { value: secret.value, ...(expiresOn !== undefined && { expiresOn }), ...(version !== undefined && { version }) };
    } catch (error) {
      throw this.translate(name, error, 'read');
    }
  }

  /** A new version of the secret; readers get it from their next read (their cache TTL permitting). */
  async setSecret(name: string, value: string, options: SecretReadOptions = {}): Promise<SecretWriteResult> {
    const client = await this.getClient();
    try {
      await client.setSecret(name, value, { abortSignal: options.abortSignal });
      return { persisted: true };
    } catch (error) {
      throw this.translate(name, error, 'write');
    }
  }
}

/** A 403 is not a missing secret: say which it is (unstorage's Key Vault driver conflates them). */
function translateKeyVaultError(name: string, error: unknown, operation: 'read' | 'write'): MailError {
  if (error instanceof MailError) return error;
  const status = (error as { statusCode?: number }).statusCode;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 404 && operation === 'read') {
    return new MailError('ESECRET_NOT_FOUND', `secret "${name}" does not exist in the vault`, {
      field: name,
      hint: `Create the secret "${name}" in the Key Vault named by KEY_VAULT_URL, or fix the name in the profile.`,
    });
  }
  if (status === 401 || status === 403) {
    return new MailError('ESECRET_ACCESS', `the vault refused to ${operation} secret "${name}" (HTTP ${status})`, {
      field: name,
      hint:
        operation === 'read'
          ? 'Grant the Function App identity "Key Vault Secrets User" (RBAC) or a Get secret access policy on the vault.'
          : 'Storing refresh tokens needs "Key Vault Secrets Officer" (RBAC) or a Set secret access policy for the Function App identity.',
      cause: error,
    });
  }
  return new MailError('ESECRET_ACCESS', `${operation === 'read' ? 'reading' : 'writing'} secret "${name}" ${operation === 'read' ? 'from' : 'to'} the vault failed: ${message}`, {
    field: name,
    hint: 'Check KEY_VAULT_URL, the network path to the vault, and the app identity.',
    cause: error,
  });
}
