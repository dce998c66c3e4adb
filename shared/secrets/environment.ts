import { MailError } from '../errors.js';
import type { SecretStore, SecretWriteResult } from './store.js';

/**
 * Secrets from app settings: for local.settings.json, and for App Service Key Vault
 * references (`@Microsoft.KeyVault(...)` settings that the platform resolves).
 * A name is looked up as written, then as an app-setting name: `support-client-secret`
 * -> `SUPPORT_CLIENT_SECRET` (app settings on Linux cannot contain dashes).
 */
export class EnvironmentSecretStore implements SecretStore {
  readonly kind = 'environment' as const;
  /** Values written at run time: app settings cannot be changed from inside the app, so they live here until a restart. */
  private readonly written = new Map<string, string>();

  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

  static settingName(name: string): string {
    return name.replace(/-/g, '_').toUpperCase();
  }

  async getSecret(name: string): Promise<string> {
    const value = this.written.get(name) ?? this.env[name] ?? this.env[EnvironmentSecretStore.settingName(name)];
    if (value === undefined || value === '') {
      throw new MailError('ESECRET_NOT_FOUND', `secret "${name}" is not set`, {
        field: name,
        hint: `Set the app setting ${EnvironmentSecretStore.settingName(name)} (or set KEY_VAULT_URL to read secrets from Key Vault).`,
      });
    }
    return value;
  }

  /** Keeps the value in memory only (persisted: false): the caller says so in its log, since a restart loses it. */
  async setSecret(name: string, value: string): Promise<SecretWriteResult> {
    this.written.set(name, value);
    return { persisted: false };
  }
}
