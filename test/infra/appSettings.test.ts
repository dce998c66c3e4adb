import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { balanced, bicepFile, bicepFiles, objectEntries, objectLiterals, variable, variableNames } from './bicepSource.js';

/**
 * The app settings infra/ gives the Function App, against the settings the app reads. The
 * settings are found in the code (shared/ and functions/): each `xxxSetting(env, 'NAME', ...)`
 * call (shared/config/settings.ts) and each direct `env.NAME` read. A call with a `default:` or a
 * choiceSetting (its first choice is the default) is optional by construction; every other
 * setting must be set by infra/app/api.bicep or be named, with the reason, in the "In Azure"
 * table of docs/settings.md. So a new setting without a default fails here until it is one or
 * the other.
 */

interface SettingRead {
  defaulted: boolean;
  files: Set<string>;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => path.join(e.parentPath, e.name));
}

function settingsReadByCode(): Map<string, SettingRead> {
  const reads = new Map<string, SettingRead>();
  const note = (name: string, defaulted: boolean, file: string) => {
    const read = reads.get(name) ?? { defaulted: true, files: new Set<string>() };
    read.defaulted &&= defaulted;
    read.files.add(path.relative(APP_ROOT, file));
    reads.set(name, read);
  };
  for (const file of [...sourceFiles(path.join(APP_ROOT, 'shared')), ...sourceFiles(path.join(APP_ROOT, 'functions'))]) {
    const text = readFileSync(file, 'utf8');
    for (const call of text.matchAll(/\b([a-z][A-Za-z]*Setting)\(\s*env\s*,\s*'([A-Za-z_][A-Za-z0-9_]*)'/g)) {
      const args = balanced(text, call.index + call[1]!.length);
      note(call[2]!, call[1] === 'choiceSetting' || /\bdefault\s*:/.test(args), file);
    }
    for (const read of text.matchAll(/\benv(?:\?)?(?:\.([A-Z][A-Za-z0-9_]*)\b|\[\s*'([A-Z][A-Za-z0-9_]*)'\s*\])/g)) note((read[1] ?? read[2])!, false, file);
  }
  return reads;
}

/** The app settings api.bicep merges into the appsettings resource: every entry of every `*AppSettings` variable it names. */
function infraAppSettings(): Map<string, string> {
  const api = bicepFile('app/api.bicep');
  const resource = /^resource\s+\w+\s+'Microsoft\.Web\/sites\/config@[^']+'\s*=\s*/m.exec(api);
  assert.ok(resource, 'infra/app/api.bicep has no Microsoft.Web/sites/config resource');
  const body = balanced(api, resource.index + resource[0].length);
  assert.ok(objectEntries(body).some((e) => e.key === 'name' && e.value === "'appsettings'"), 'the sites/config resource is not the appsettings one');
  const properties = objectEntries(body).find((e) => e.key === 'properties')?.value ?? '';
  const settings = new Map<string, string>();
  const settingVariables = variableNames(api).filter((name) => name.endsWith('AppSettings'));
  assert.ok(settingVariables.length > 0, 'api.bicep defines no *AppSettings variable');
  for (const name of settingVariables) {
    assert.match(properties, new RegExp(`\\b${name}\\b`), `${name} is defined but not merged into the appsettings resource`);
    for (const literal of objectLiterals(variable(api, name)!)) {
      for (const entry of objectEntries(literal)) settings.set(entry.key, entry.value);
    }
  }
  return settings;
}

function settingsDoc(): string {
  return readFileSync(path.join(APP_ROOT, 'docs', 'settings.md'), 'utf8');
}

/** The settings docs/settings.md names in the first column of its "In Azure" table: those infra/ leaves unset, each with the reason. */
function leftUnsetInAzure(): Map<string, string> {
  const doc = settingsDoc();
  const heading = /^## In Azure\b.*$/m.exec(doc);
  assert.ok(heading, 'docs/settings.md has no "## In Azure" section');
  const rest = doc.slice(heading.index + heading[0].length);
  const section = rest.slice(0, /^## /m.exec(rest)?.index ?? rest.length);
  const unset = new Map<string, string>();
  for (const row of section.matchAll(/^\|([^|\n]+)\|([^\n]+)\|\s*$/gm)) {
    const reason = row[2]!.trim();
    for (const name of row[1]!.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)) unset.set(name[1]!, reason);
  }
  assert.ok(unset.size > 0, 'the "In Azure" section of docs/settings.md has no table naming settings');
  return unset;
}

function entry(settings: Map<string, string>, key: string): string {
  const value = settings.get(key);
  assert.ok(value !== undefined, `infra/ does not set ${key}`);
  return value;
}

describe('app settings in Azure: infra/ sets what the app needs', () => {
  const reads = settingsReadByCode();

  it('finds the settings parseSettings and the profiles loader read (the scan itself works)', () => {
    for (const name of ['KEY_VAULT_URL', 'AzureWebJobsStorage', 'OAUTH_REDIRECT_URI', 'MAIL_PROFILES', 'SEND_MAX_BYTES', 'POLL_SCHEDULE']) {
      assert.ok(reads.has(name), `the scan of shared/ and functions/ missed ${name}`);
    }
    assert.equal(reads.get('SEND_MAX_BYTES')?.defaulted, true);
    assert.equal(reads.get('SEND_MODE')?.defaulted, true);
    assert.equal(reads.get('KEY_VAULT_URL')?.defaulted, false);
  });

  it('every setting the app reads without a default is set by infra/ or named in docs/settings.md as left unset in Azure', () => {
    const infra = infraAppSettings();
    const unset = leftUnsetInAzure();
    const missing = [...reads]
      .filter(([name, read]) => !read.defaulted && !infra.has(name) && !unset.has(name))
      .map(([name, read]) => `${name} (read in ${[...read.files].join(', ')})`);
    assert.deepEqual(missing, [], 'set these in infra/app/api.bicep, or name them with the reason in the "In Azure" table of docs/settings.md');
  });

  it('no setting is both set by infra/ and documented as left unset', () => {
    const infra = infraAppSettings();
    assert.deepEqual([...leftUnsetInAzure().keys()].filter((name) => infra.has(name)), []);
  });

  it('every "left unset" row gives a reason', () => {
    for (const [name, reason] of leftUnsetInAzure()) assert.ok(reason.length >= 10, `docs/settings.md gives no reason for leaving ${name} unset`);
  });

  it('the host reaches its storage with the managed identity: AzureWebJobsStorage__* and no connection string or key', () => {
    const infra = infraAppSettings();
    assert.equal(entry(infra, 'AzureWebJobsStorage__credential'), "'managedidentity'");
    assert.equal(entry(infra, 'AzureWebJobsStorage__clientId'), entry(infra, 'AZURE_CLIENT_ID'), 'the host and the app use the same identity');
    for (const service of ['blob', 'queue', 'table']) assert.match(entry(infra, `AzureWebJobsStorage__${service}ServiceUri`), new RegExp(`^${service}Endpoint$`));
    assert.equal(infra.has('AzureWebJobsStorage'), false, 'a connection string in AzureWebJobsStorage would take precedence over the identity-based settings');
    for (const [file, text] of bicepFiles()) {
      assert.doesNotMatch(text, /listKeys\(|AccountKey=|SharedAccessSignature/, `${file} uses a storage key`);
    }
    assert.match(bicepFile('app/storage.bicep'), /^\s*allowSharedKeyAccess: false$/m);
  });

  it('telemetry goes to Application Insights with an Entra token for the identity, local authentication off', () => {
    const infra = infraAppSettings();
    assert.equal(entry(infra, 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'), "'ClientId=${identityClientId};Authorization=AAD'");
    assert.equal(entry(infra, 'AZURE_CLIENT_ID'), 'identityClientId');
    assert.ok(infra.has('APPLICATIONINSIGHTS_CONNECTION_STRING'));
    assert.match(bicepFile('app/monitoring.bicep'), /^\s*disableLocalAuth: true$/m);
  });

  it('secrets come from the vault, which authorizes with Azure RBAC; the profiles document is a Key Vault reference', () => {
    const infra = infraAppSettings();
    assert.equal(entry(infra, 'KEY_VAULT_URL'), 'keyVaultUri');
    assert.match(entry(infra, 'MAIL_PROFILES'), /^'@Microsoft\.KeyVault\(VaultName=\$\{keyVaultName\};SecretName=\$\{profilesSecretName\}\)'$/);
    assert.match(bicepFile('app/keyvault.bicep'), /^\s*enableRbacAuthorization: true$/m);
    assert.match(bicepFile('app/api.bicep'), /^\s*keyVaultReferenceIdentity: identityResourceId$/m);
  });

  it('sets nothing the Flex Consumption plan refuses (the runtime is functionAppConfig.runtime)', () => {
    const infra = infraAppSettings();
    const refused = ['FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_EXTENSION_VERSION', 'WEBSITE_RUN_FROM_PACKAGE', 'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING', 'WEBSITE_CONTENTSHARE'];
    assert.deepEqual(refused.filter((name) => infra.has(name)), []);
    assert.match(bicepFile('app/api.bicep'), /runtime: \{\s*name: 'node'\s*version: nodeVersion\s*\}/);
  });
});
