import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { storageConnectionSetting } from '../../shared/config/storageSettings.js';
import { isMailError, type MailError } from '../../shared/errors.js';
import { silentLogger } from '../../shared/log.js';
import { redact } from '../../shared/redact.js';
import { MailRuntime } from '../../shared/runtime.js';

const URIS = {
  AzureWebJobsStorage__blobServiceUri: 'https://stmail.blob.core.windows.net/',
  AzureWebJobsStorage__queueServiceUri: 'https://stmail.queue.core.windows.net',
  AzureWebJobsStorage__tableServiceUri: 'https://stmail.table.core.windows.net',
};

function configError(env: NodeJS.ProcessEnv): MailError {
  try {
    storageConnectionSetting(env);
  } catch (error) {
    if (isMailError(error)) return error;
    throw error;
  }
  assert.fail(`no ECONFIG for ${JSON.stringify(env)}`);
}

describe('AzureWebJobsStorage: a connection string or the identity-based settings, read as the Functions host reads them', () => {
  it('none set: no account (required where state is first used)', () => {
    assert.equal(storageConnectionSetting({}), undefined);
    assert.equal(storageConnectionSetting({ AzureWebJobsStorage: '  ', AzureWebJobsStorage__clientId: '' }), undefined);
  });

  it('a connection string wins over identity-based settings, as in the host', () => {
    assert.deepEqual(storageConnectionSetting({ AzureWebJobsStorage: 'UseDevelopmentStorage=true', ...URIS }), { kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' });
  });

  it('the deployed form: service URIs (trailing slash dropped), managedidentity and the user-assigned identity\'s client id', () => {
    assert.deepEqual(storageConnectionSetting({ ...URIS, AzureWebJobsStorage__credential: 'managedidentity', AzureWebJobsStorage__clientId: 'c1' }), {
      kind: 'identity',
      serviceUris: { blob: 'https://stmail.blob.core.windows.net', queue: 'https://stmail.queue.core.windows.net', table: 'https://stmail.table.core.windows.net' },
      credential: { kind: 'managedIdentity', clientId: 'c1' },
    });
    const byResource = storageConnectionSetting({ ...URIS, AzureWebJobsStorage__credential: 'ManagedIdentity', AzureWebJobsStorage__managedIdentityResourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mail' });
    assert.deepEqual(byResource?.kind === 'identity' && byResource.credential, { kind: 'managedIdentity', resourceId: '/subscriptions/s/resourceGroups/g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-mail' });
    const systemAssigned = storageConnectionSetting({ ...URIS, AzureWebJobsStorage__credential: 'managedidentity' });
    assert.deepEqual(systemAssigned?.kind === 'identity' && systemAssigned.credential, { kind: 'managedIdentity' });
  });

  it('__accountName gives the public cloud\'s endpoints; a service URI set beside it wins for its service', () => {
    const c = storageConnectionSetting({ AzureWebJobsStorage__accountName: 'stmail', AzureWebJobsStorage__tableServiceUri: 'https://tables.contoso.example' });
    assert.deepEqual(c?.kind === 'identity' && c.serviceUris, { blob: 'https://stmail.blob.core.windows.net', queue: 'https://stmail.queue.core.windows.net', table: 'https://tables.contoso.example' });
    assert.deepEqual(c?.kind === 'identity' && c.credential, { kind: 'default' });
  });

  it('without __credential: a service principal\'s secret, or the developer\'s credential', () => {
    const sp = storageConnectionSetting({ ...URIS, AzureWebJobsStorage__tenantId: 't', AzureWebJobsStorage__clientId: 'c', AzureWebJobsStorage__clientSecret: 's' });
    assert.deepEqual(sp?.kind === 'identity' && sp.credential, { kind: 'clientSecret', tenantId: 't', clientId: 'c', clientSecret: 's' });
    const dev = storageConnectionSetting({ ...URIS, AzureWebJobsStorage__clientId: 'c' });
    assert.deepEqual(dev?.kind === 'identity' && dev.credential, { kind: 'default', clientId: 'c' });
  });

  it('each incomplete or wrong setting is ECONFIG naming it', () => {
    const cases: Array<[NodeJS.ProcessEnv, string]> = [
      [{ AzureWebJobsStorage__blobServiceUri: URIS.AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__queueServiceUri: URIS.AzureWebJobsStorage__queueServiceUri }, 'AzureWebJobsStorage__tableServiceUri'],
      [{ AzureWebJobsStorage__credential: 'managedidentity' }, 'AzureWebJobsStorage__blobServiceUri'],
      [{ ...URIS, AzureWebJobsStorage__queueServiceUri: 'http://stmail.queue.core.windows.net' }, 'AzureWebJobsStorage__queueServiceUri'],
      [{ ...URIS, AzureWebJobsStorage__blobServiceUri: 'stmail' }, 'AzureWebJobsStorage__blobServiceUri'],
      [{ AzureWebJobsStorage__accountName: 'St_Mail' }, 'AzureWebJobsStorage__accountName'],
      [{ ...URIS, AzureWebJobsStorage__credential: 'connectionstring' }, 'AzureWebJobsStorage__credential'],
      [{ ...URIS, AzureWebJobsStorage__credential: 'managedidentity', AzureWebJobsStorage__clientId: 'c', AzureWebJobsStorage__managedIdentityResourceId: '/r' }, 'AzureWebJobsStorage__managedIdentityResourceId'],
      [{ ...URIS, AzureWebJobsStorage__clientId: 'c', AzureWebJobsStorage__clientSecret: 's' }, 'AzureWebJobsStorage__tenantId'],
      [{ ...URIS, AzureWebJobsStorage__tenantId: 't', AzureWebJobsStorage__clientSecret: 's' }, 'AzureWebJobsStorage__clientId'],
    ];
    for (const [env, field] of cases) {
      const error = configError(env);
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, field, error.message);
      assert.ok(error.hint, field);
    }
  });

  it('the runtime refuses them at start-up, and a service principal\'s secret never reaches a log line', () => {
    assert.throws(() => new MailRuntime({ env: { MAIL_DIR: '/nonexistent', AzureWebJobsStorage__credential: 'managedidentity' }, logger: silentLogger }), (e) => isMailError(e) && e.field === 'AzureWebJobsStorage__blobServiceUri');
    const secret = 'storage-sp-secret-Zq81x';
    const r = new MailRuntime({ env: { MAIL_DIR: '/nonexistent', ...URIS, AzureWebJobsStorage__tenantId: 't', AzureWebJobsStorage__clientId: 'c', AzureWebJobsStorage__clientSecret: secret }, logger: silentLogger });
    void r.close();
    assert.equal(redact(`failed with ${secret}`).includes(secret), false);
  });
});
