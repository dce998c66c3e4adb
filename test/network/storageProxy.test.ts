import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { AzuritePeer } from '../peers/azurite.js';
import { ProxyPeer } from '../peers/proxyPeer.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';

/**
 * The blob and queue clients take the Azure SDK's own proxyOptions (shared/state/storage.ts says
 * why), and the SDK then also skips the hosts in the process's NO_PROXY, read once, when its first
 * client is made. test/run.js puts 127.0.0.1 there: this file (its own process) empties it before
 * any client exists, as an app whose NO_PROXY names no storage host has it.
 */
const restoreNoProxy = setProcessEnv({ NO_PROXY: '' });

describe('the state\'s storage account is reached through HTTPS_PROXY', () => {
  const azurite = new AzuritePeer();
  const proxy = new ProxyPeer();
  before(async () => {
    await Promise.all([azurite.start(), proxy.start()]);
  });
  after(async () => {
    await Promise.all([azurite.stop(), proxy.stop()]);
    restoreNoProxy();
  });

  const runtime = () => new MailRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail', AzureWebJobsStorage: azurite.connectionString, HTTPS_PROXY: proxy.url(), NO_PROXY: '' }, logger: silentLogger });

  it('the table client goes through a tunnel, the blob and queue clients through the SDK\'s own proxy option', async () => {
    const r = runtime();
    try {
      const account = r.state.account;
      await (await account.table('proxycheck')).upsertEntity({ partitionKey: 'p', rowKey: 'r', value: 1 });
      await (await account.queue('proxy-check')).sendMessage('hello');
      await (await account.container('proxy-check')).getBlockBlobClient('b').upload('hello', 5);
    } finally {
      await r.close();
    }
    assert.ok(proxy.openedTo(azurite.port('Table')).length > 0, JSON.stringify(proxy.tunnels));
    // Azurite speaks plain http: the SDK's proxy agent sends those requests to the proxy as absolute URIs.
    for (const service of ['Queue', 'Blob'] as const) {
      assert.ok(proxy.plainRequests.some((r) => r.includes(`//127.0.0.1:${azurite.port(service)}/`)), `${service}: ${JSON.stringify(proxy.plainRequests)}`);
    }
  });

  it('a proxy refusing the tunnel to storage is EPROXY naming HTTPS_PROXY, not a storage outage', async () => {
    proxy.deniedPorts.add(azurite.port('Table'));
    const r = runtime();
    try {
      const error = await mailErrorFrom(r.state.account.table('proxyrefused'));
      assert.equal(error.code, 'EPROXY', error.message);
      assert.equal(error.field, 'HTTPS_PROXY');
      assert.match(error.message, new RegExp(`refused the tunnel to 127\\.0\\.0\\.1:${azurite.port('Table')}: HTTP 403`));
    } finally {
      proxy.deniedPorts.clear();
      await r.close();
    }
  });
});
