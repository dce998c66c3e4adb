import { registerSensitive } from '../redact.js';

export interface SecretReadOptions {
  abortSignal?: AbortSignal;
}

export interface SecretWriteResult {
  /** false when the store cannot persist (app settings): the value then lives in this process only, until it restarts. */
  persisted: boolean;
}

/** Resolves secret names (letters, digits, dashes) to values. */
export interface SecretStore {
  readonly kind: 'keyVault' | 'environment';
  getSecret(name: string, options?: SecretReadOptions): Promise<string>;
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

/** A TTL cache in front of a store; concurrent reads of one name share one request. */
export class CachedSecretStore implements SecretStore {
  readonly kind: SecretStore['kind'];
  private readonly entries = new Map<string, { value: Promise<string>; expiresAt: number }>();
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
        this.entries.set(name, { value: Promise.resolve(value), expiresAt: this.now() + this.ttlMs });
        return result;
      };
    }
  }

  getSecret(name: string, options?: SecretReadOptions): Promise<string> {
    const cached = this.entries.get(name);
    if (cached && cached.expiresAt > this.now()) return cached.value;
    const value = this.inner.getSecret(name, options).then((v) => {
      registerSensitive(v);
      return v;
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
