import { createSecretStore } from '../../shared/secrets/index.js';
import type { SecretStore } from '../../shared/secrets/store.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { setProcessEnv } from './processEnv.js';

export const TENANT = 'contoso-tenant';
/** The Function App's own identity, which reads and writes the vault (AZURE_* for DefaultAzureCredential). */
const VAULT_USER = { tenantId: TENANT, clientId: 'function-app', secret: 'function-app-vault-secret' };

/**
 * Loopback Entra and Key Vault for delegated-auth tests: the app identity registered, the
 * AZURE_* variables DefaultAzureCredential reads set while started, and the settings that
 * point a secret store at the vault.
 */
export class DelegatedHarness {
  readonly entra = new TokenEndpointPeer();
  readonly vault = new KeyVaultPeer(this.entra, TENANT);
  private restoreEnv?: () => void;

  async start(): Promise<void> {
    await this.entra.start();
    await this.vault.start();
    this.entra.register(VAULT_USER);
    this.restoreEnv = setProcessEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: VAULT_USER.clientId, AZURE_CLIENT_SECRET: VAULT_USER.secret, AZURE_AUTHORITY_HOST: this.entra.url });
  }

  async stop(): Promise<void> {
    this.restoreEnv?.();
    await this.vault.stop();
    await this.entra.stop();
  }

  /** App settings for a Key Vault secret store on the loopback vault. */
  get vaultSettings(): Record<string, string> {
    return { KEY_VAULT_URL: this.vault.url, KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true', AZURE_AUTHORITY_HOST: this.entra.url };
  }

  /** A new secret store on the vault, as a new process would have. */
  vaultStore(): SecretStore {
    return createSecretStore(this.vaultSettings);
  }

  /** Successful writes of a secret, through the real SecretClient. */
  writes(name: string): number {
    return this.vault.requests.filter((r) => r.method === 'PUT' && r.path === `/secrets/${name}` && r.status === 200).length;
  }
}
