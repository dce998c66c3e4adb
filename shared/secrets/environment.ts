import { MailError } from '../errors.js';
import type { SecretStore } from './store.js';

/**
 * Secrets from app settings: for local.settings.json, and for App Service Key Vault
 * references (`@Microsoft.KeyVault(...)` settings that the platform resolves).
 * A name is looked up as written, then as an app-setting name: `support-client-secret`
 * -> `SUPPORT_CLIENT_SECRET` (app settings on Linux cannot contain dashes).
 */
export class EnvironmentSecretStore implements SecretStore {
  readonly kind = 'environment' as const;

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  static settingName(name: string): string {
    return name.replace(/-/g, '_').toUpperCase();
  }

  async getSecret(name: string): Promise<string> {
    const value = this.env[name] ?? this.env[EnvironmentSecretStore.settingName(name)];
    if (value === undefined || value === '') {
      throw new MailError('ESECRET_NOT_FOUND', `secret "${name}" is not set`, {
        field: name,
        hint: `Set the app setting ${EnvironmentSecretStore.settingName(name)} (or set KEY_VAULT_URL to read secrets from Key Vault).`,
      });
    }
    return value;
  }
}
