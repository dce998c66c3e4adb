import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { QueueClient } from '@azure/storage-queue';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { AzuritePeer } from '../peers/azurite.js';
import { STORAGE_AUDIENCE, TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';
import { runNode } from '../support/runNode.js';

/**
 * Identity-based AzureWebJobsStorage, as infra/ deploys it: no connection string, the account's
 * service URIs, `__credential=managedidentity` and the user-assigned identity's `__clientId`.
 * Against Azurite with Entra authentication (https, `--oauth basic`) and the loopback token
 * endpoint's App Service managed identity endpoint (IDENTITY_ENDPOINT + IDENTITY_HEADER, which
 * MSAL reads from process.env once per process: this file is its own process).
 */
describe('identity-based AzureWebJobsStorage (managed identity, Azurite with OAuth)', () => {
  const azurite = new AzuritePeer({ oauth: true });
  const entra = new TokenEndpointPeer();
  const identity = '6a0c1b1e-4d3f-4c51-9e2b-0d7e5c1a9f31';
  let restoreEnv: () => void;
  let dir: string;

  before(async () => {
    await Promise.all([azurite.start(), entra.start()]);
    entra.userAssignedIdentities.add(identity);
    restoreEnv = setProcessEnv({ IDENTITY_ENDPOINT: entra.managedIdentityEndpoint, IDENTITY_HEADER: entra.identityHeader });
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-identity-storage-'));
    mkdirSync(path.join(dir, 'inbox'), { recursive: true });
  });
  after(async () => {
    restoreEnv();
    await Promise.all([azurite.stop(), entra.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const identitySettings = (clientId = identity): NodeJS.ProcessEnv => ({
    AzureWebJobsStorage__credential: 'managedidentity',
    AzureWebJobsStorage__clientId: clientId,
    AzureWebJobsStorage__blobServiceUri: azurite.serviceUri('Blob'),
    AzureWebJobsStorage__queueServiceUri: azurite.serviceUri('Queue'),
    AzureWebJobsStorage__tableServiceUri: azurite.serviceUri('Table'),
  });
  const storageTokenRequests = () => entra.tokenRequests().filter((r) => r.path.startsWith('/msi/') && r.scope?.replace(/\/$/, '') === STORAGE_AUDIENCE);

  it('tables, blobs and queues are reached with the identity\'s token, one token request for all three', async () => {
    const before = storageTokenRequests().length;
    const r = new MailRuntime({ env: { MAIL_DIR: dir, ...identitySettings() }, logger: silentLogger });
    try {
      const account = r.state.account;
      assert.equal(account.authentication, 'identity');
      const table = await account.table('identitycheck');
      await table.upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 7 });
      assert.equal((await table.getEntity<{ value: number }>('p', 'r')).value, 7);
      const blob = (await account.container('identity-check')).getBlockBlobClient('b');
      await blob.upload('hello', 5);
      assert.equal((await blob.downloadToBuffer()).toString(), 'hello');
      const queue = await account.queue('identity-check');
      await queue.sendMessage('hi');
      assert.equal((await queue.receiveMessages()).receivedMessageItems[0]?.messageText, 'hi');
    } finally {
      await r.close();
    }
    const requests = storageTokenRequests().slice(before);
    assert.deepEqual(requests.map((q) => [q.clientId, q.outcome]), [[identity, 'issued']], JSON.stringify(requests));
  });

  it('the account refuses a request without a token: what passed above passed on the identity\'s token', async () => {
    const anonymous = new QueueClient(`${azurite.serviceUri('Queue')}/identity-check`);
    await assert.rejects(anonymous.peekMessages(), (e: { statusCode?: number }) => e.statusCode === 401 || e.statusCode === 403);
  });

  it('an identity the platform does not attach to the app is ESTATE naming AzureWebJobsStorage__credential, with nothing written', async () => {
    const r = new MailRuntime({ env: { MAIL_DIR: dir, ...identitySettings('00000000-0000-0000-0000-00000000dead') }, logger: silentLogger });
    try {
      const error = await mailErrorFrom(r.state.account.table('neverwritten'));
      assert.equal(error.code, 'ESTATE', error.message);
      assert.equal(error.field, 'AzureWebJobsStorage__credential');
      assert.match(error.hint ?? '', /__clientId/);
    } finally {
      await r.close();
    }
  });

  it('`m365-mail poll` keeps its state and delivers to its queue through the identity alone, with no connection string anywhere', async () => {
    const eml = (n: number) => [`From: Ann <ann@example.com>`, 'To: local@localhost.localdomain', `Subject: identity ${n}`, 'Date: Mon, 23 Nov 2026 10:00:00 +0000', `Message-ID: <identity-${n}@example.com>`, '', `body ${n}`, ''].join('\r\n');
    writeFileSync(path.join(dir, 'inbox', 'a.eml'), eml(1));
    writeFileSync(path.join(dir, 'inbox', 'b.eml'), eml(2));
    const env: NodeJS.ProcessEnv = { ...process.env, MAIL_DIR: dir, ...identitySettings(), IDENTITY_ENDPOINT: entra.managedIdentityEndpoint, IDENTITY_HEADER: entra.identityHeader };
    for (const key of ['AzureWebJobsStorage', 'MAIL_PROFILES', 'MAIL_PROFILES_FILE', 'DEFAULT_PROFILE', 'KEY_VAULT_URL']) delete env[key];
    const before = storageTokenRequests().length;
    const run = await runNode([path.join(APP_ROOT, 'dist', 'cli', 'm365-mail.js'), 'poll'], { cwd: APP_ROOT, env });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as { status: string; delivered: number };
    assert.deepEqual([result.status, result.delivered], ['completed', 2]);
    assert.deepEqual(readdirSync(path.join(dir, 'processed')).sort(), ['a.eml', 'b.eml']);
    assert.ok(storageTokenRequests().length > before, 'the CLI asked the managed identity endpoint for a storage token');

    // Read back with the account key: the messages are in the account the identity named.
    const queue = new QueueClient(azurite.connectionString, 'mail-incoming');
    const received = await queue.receiveMessages({ numberOfMessages: 32 });
    const subjects = received.receivedMessageItems.map((m) => (JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { subject: string }).subject);
    assert.deepEqual(subjects.sort(), ['identity 1', 'identity 2']);
  });
});
