import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { createSecretStore } from '../../shared/secrets/index.js';
import { mailErrorOf } from '../support/mailError.js';

function runtime(env: NodeJS.ProcessEnv): MailRuntime {
  return new MailRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail', ...env }, logger: silentLogger });
}

describe('numeric app settings are checked at start-up and name the setting', () => {
  for (const [name, value] of [
    ['SEND_MAX_BYTES', '35MB'],
    ['SEND_MAX_BYTES', '0'],
    ['SEND_MAX_RECIPIENTS', 'many'],
    ['SEND_MAX_RECIPIENTS', '2.5'],
  ] as const) {
    it(`${name}="${value}" is ECONFIG, not a limit that silently never applies`, () => {
      const error = mailErrorOf(() => runtime({ [name]: value }));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, name);
      assert.match(error.message, new RegExp(`${name} must be a whole number.*"${value.replace('.', '\\.')}"`));
    });
  }

  it('an unset or empty limit is the default, a valid one applies', () => {
    const local = () => runtime({}).profile(undefined);
    const defaults = { maxBytes: 35 * 1024 * 1024, maxRecipients: 500, maxAttachments: 250, maxHeaders: 100, maxHeaderBytes: 256 * 1024 };
    assert.deepEqual(runtime({}).sendLimits(local()), defaults);
    assert.deepEqual(runtime({ SEND_MAX_BYTES: '', SEND_MAX_RECIPIENTS: ' ', SEND_MAX_ATTACHMENTS: '' }).sendLimits(local()), defaults);
    assert.deepEqual(runtime({ SEND_MAX_BYTES: '1000', SEND_MAX_RECIPIENTS: '3', SEND_MAX_ATTACHMENTS: '0', SEND_MAX_HEADERS: '2', SEND_MAX_HEADER_BYTES: '64' }).sendLimits(local()), { maxBytes: 1000, maxRecipients: 3, maxAttachments: 0, maxHeaders: 2, maxHeaderBytes: 64 });
  });

  for (const value of ['five minutes', '-1']) {
    it(`SECRET_CACHE_TTL_SECONDS="${value}" is ECONFIG instead of a silent default or a negative TTL`, () => {
      const error = mailErrorOf(() => createSecretStore({ SECRET_CACHE_TTL_SECONDS: value }));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, 'SECRET_CACHE_TTL_SECONDS');
    });
  }

  it('SECRET_CACHE_TTL_SECONDS="0" turns the cache off: a changed setting is read at once', async () => {
    const env: NodeJS.ProcessEnv = { SECRET_CACHE_TTL_SECONDS: '0', HOOK_KEY: 'first-value' };
    const store = createSecretStore(env);
    assert.equal(await store.getSecret('hook-key'), 'first-value');
    env.HOOK_KEY = 'second-value';
    assert.equal(await store.getSecret('hook-key'), 'second-value');
  });

  for (const [name, value, pattern] of [
    ['KEY_VAULT_URL', 'myvault', /https URL/],
    ['KEY_VAULT_URL', 'http://myvault.vault.azure.net', /https URL/],
    ['AZURE_AUTHORITY_HOST', 'login.microsoftonline.us', /https URL/],
    ['KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION', 'yes', /true or false/],
  ] as const) {
    it(`${name}="${value}" is ECONFIG naming it, not a store that fails at its first read or a silent false`, () => {
      const env: NodeJS.ProcessEnv = { KEY_VAULT_URL: 'https://contoso.vault.azure.net', [name]: value };
      const error = mailErrorOf(() => createSecretStore(env));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, name);
      assert.match(error.message, pattern);
    });
  }

  it('KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION takes true in any case, and empty settings mean the defaults', () => {
    assert.equal(createSecretStore({ KEY_VAULT_URL: 'https://vault.example.test', KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'True' }).kind, 'keyVault');
    assert.equal(createSecretStore({ KEY_VAULT_URL: '', AZURE_AUTHORITY_HOST: '', KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: '' }).kind, 'environment');
  });

  it('a DEFAULT_PROFILE that names no configured profile is ECONFIG at start-up, not a 400 telling the caller about a profile it never named', () => {
    const error = mailErrorOf(() => runtime({ DEFAULT_PROFILE: 'suport' }));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.field, 'DEFAULT_PROFILE');
    assert.match(error.hint ?? '', /one of local/);
    assert.equal(runtime({ DEFAULT_PROFILE: '' }).profile(undefined).name, 'local');
    assert.equal(runtime({ DEFAULT_PROFILE: 'local' }).profile(undefined).name, 'local');
  });

  for (const [name, value] of [
    ['SEND_MODE', 'later'],
    ['SEND_MAX_ATTEMPTS', '0'],
    ['SEND_RETRY_BASE_SECONDS', '0'],
    ['POLL_MAX_DURATION_SECONDS', 'four minutes'],
    ['WEBHOOK_TIMEOUT_MS', '10s'],
    ['WEBHOOK_MAX_ATTEMPTS', '-1'],
    ['TOKEN_TIMEOUT_SECONDS', '0'],
    ['HEALTH_STALE_AFTER_SECONDS', '5min'],
  ] as const) {
    it(`${name}="${value}" stops the runtime at start-up naming it, instead of failing the first request, poll or delivery that reads it`, () => {
      const error = mailErrorOf(() => runtime({ [name]: value }));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, name);
    });
  }

  it('settings are read once, when the runtime starts: a later change of the environment changes nothing', () => {
    const env: NodeJS.ProcessEnv = { MAIL_DIR: '/nonexistent/m365-mail', SEND_MODE: 'queued', POLL_MAX_DURATION_SECONDS: '30' };
    const started = new MailRuntime({ env, logger: silentLogger });
    env.SEND_MODE = 'later';
    env.POLL_MAX_DURATION_SECONDS = 'never';
    assert.deepEqual([started.settings.sendMode, started.settings.pollMaxDurationSeconds], ['queued', 30]);
  });
});
