import { registerSensitive } from '../redact.js';

export interface SecretReadOptions {
  abortSignal?: AbortSignal;
}

export interface SecretWriteResult {
  /** false when the store cannot persist (app settings): the value then lives in this process only, until it restarts. */
  persisted: boolean;
}

/** A secret's value and what the store knows of the version it read. */
export interface SecretRead {
  value: string;
  /** When the version expires, if the store keeps a date (Key Vault's `exp` attribute, set by whoever stored it). */
  expiresOn?: Date;
  /** The store's id of the version read (Key Vault's version). */
  version?: string;
}

/** Resolves secret names (letters, digits, dashes) to values. */
export interface SecretStore {
  readonly kind: 'keyVault' | 'environment';
  getSecret(name: string, options?: SecretReadOptions): Promise<string>;
  /** The value with its version's properties, from the same read. Absent on stores that keep none (app settings). */
  readSecret?(name: string, options?: SecretReadOptions): Promise<SecretRead>;
  /** Stores a new value (a refresh token from consent or rotation). Absent on stores that cannot take one. */
  setSecret?(name: string, value: string, options?: SecretReadOptions): Promise<SecretWriteResult>;
  /** Forgets a cached value so the next read goes to the backing store (after an auth failure). */
  invalidate?(name: string): void;
}

export interface CachedSecretStoreOptions {
  /** How long a value is served from memory. @default 300_000 (5 minutes) */
  ttlMs?: number;
  now?: () => number;
}

/**
 * A TTL cache in front of a store; concurrent reads of one name share one request. A value and
 * its version's properties are cached together, so what readSecret reports (an expiry date) is
 * that of the version the credentials in this process were built from.
 */
export class CachedSecretStore implements SecretStore {
  readonly kind: SecretStore['kind'];
  private readonly entries = new Map<string, { value: Promise<SecretRead>; expiresAt: number }>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(private readonly inner: SecretStore, options: CachedSecretStoreOptions = {}) {
    this.kind = inner.kind;
    this.ttlMs = options.ttlMs ?? 300_000;
    this.now = options.now ?? Date.now;
    const write = inner.setSecret?.bind(inner);
    if (write) {
      this.setSecret = async (name, value, writeOptions) => {
        registerSensitive(value);
        const result = await write(name, value, writeOptions);
        this.entries.set(name, { value: Promise.resolve({ value }), expiresAt: this.now() + this.ttlMs });
        return result;
      };
    }
  }

  async getSecret(name: string, options?: SecretReadOptions): Promise<string> {
    return (await this.readSecret(name, options)).value;
  }

  readSecret(name: string, options?: SecretReadOptions): Promise<SecretRead> {
    const cached = this.entries.get(name);
    if (cached && cached.expiresAt > this.now()) return cached.value;
    const read = this.inner.readSecret ? this.inner.readSecret(name, options) : this.inner.getSecret(name, options).then((value) => ({ value }));
    const value = read.then((r) => {
      registerSensitive(r.value);
      return r;
    });
    this.entries.set(name, { value, expiresAt: this.now() + this.ttlMs });
    value.catch(() => {
      if (this.entries.get(name)?.value === value) this.entries.delete(name);
    });
    return value;
  }

  /** Writes through, and serves the new value from memory at once: the next reader must not get the one it replaces. */
  readonly setSecret?: (name: string, value: string, options?: SecretReadOptions) => Promise<SecretWriteResult>;

  invalidate(name: string): void {
    this.entries.delete(name);
  }
}
