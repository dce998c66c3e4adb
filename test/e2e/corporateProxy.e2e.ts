import assert from 'node:assert/strict';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { createLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { TokenEndpointPeer, tokenMailboxes } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';
import { MailServers } from './mailServers.js';
import { Tinyproxy } from './tinyproxy.js';

const TENANT = 'contoso-tenant';
const MAILBOX = 'helpdesk@contoso.com';
const APP = { tenantId: TENANT, clientId: 'helpdesk-proxy-app', secret: 'helpdesk-proxy-app-secret' };
const VAULT_READER = { tenantId: TENANT, clientId: 'function-app', secret: 'function-app-vault-secret' };
const PROXY = { user: 'mail-svc', password: 'tinyproxy-pass-81d3' };
const portOf = (endpoint: string) => Number(/:(\d+)$/.exec(endpoint)![1]);

/**
 * Issue 9, item 4, end to end: Debian's tinyproxy is the corporate proxy, with Basic credentials
 * and ConnectPort allowing only the ports this suite's servers listen on. The app reaches the real
 * Postfix (submission) and Dovecot (IMAP, POP3), and the token endpoint, Key Vault and Graph
 * stand-ins, only through it: HTTPS_PROXY (credentials in the URL) for the vault, the profiles'
 * proxy (password in the vault) for the rest. Its log must show a CONNECT for every connection the
 * servers saw; a port it does not allow is EPROXY.
 */
describe('through a real proxy (tinyproxy): every connection of the app, and EPROXY where it refuses', { timeout: 300_000 }, () => {
  const entra = new TokenEndpointPeer();
  const vault = new KeyVaultPeer(entra, TENANT);
  const graph = new GraphPeer(entra);
  let servers: MailServers;
  let proxy: Tinyproxy;
  let restoreEnv: () => void;
  const logs: string[] = [];
  const runtimes: MailRuntime[] = [];

  before(async () => {
    await Promise.all([entra.start(), vault.start(), graph.start()]);
    entra.register(APP);
    entra.register(VAULT_READER);
    tokenMailboxes.set(APP.clientId, MAILBOX);
    graph.addMailbox(MAILBOX);
    vault.setSecret('helpdesk-client-secret', APP.secret);
    vault.setSecret('proxy-password', PROXY.password);
    servers = await new MailServers({ introspectionUrl: entra.introspectionUrl, domains: ['contoso.com'] }).start();
    // Not the implicit-TLS submissions port: the refusal below is tinyproxy's 403 for it.
    const allowed = [servers.smtp, servers.imap, servers.pop3, entra.url, vault.url, graph.url].map(portOf);
    proxy = await new Tinyproxy({ connectPorts: allowed, credentials: PROXY }).start();
    restoreEnv = setProcessEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: entra.url });
  });
  after(async () => {
    restoreEnv?.();
    tokenMailboxes.delete(APP.clientId);
    await Promise.all(runtimes.map((r) => r.close()));
    await proxy?.stop();
    await servers?.stop();
    await Promise.all([graph.stop(), vault.stop()]);
    await entra.stop();
  });

  function runtime(options: { smtp?: string } = {}): MailRuntime {
    const profile = (section: Record<string, unknown>) => ({
      mailbox: MAILBOX,
      tenantId: TENANT,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'helpdesk-client-secret' },
      proxy: { url: `http://${PROXY.user}@127.0.0.1:${proxy.port}`, passwordSecret: 'proxy-password' },
      ...section,
      endpoints: { authority: entra.url, smtp: options.smtp ?? servers.smtp, imap: servers.imap, pop3: servers.pop3, graph: graph.url },
    });
    const deliver = { queue: { name: 'mail-incoming' } };
    const env = {
      MAIL_PROFILES: JSON.stringify({
        profiles: {
          smtp: profile({ send: { via: 'smtp', allowedFrom: [MAILBOX] }, receive: { via: 'imap', deliver } }),
          pop3: profile({ receive: { via: 'pop3', deliver } }),
          graph: profile({ send: { via: 'graph', allowedFrom: [MAILBOX] } }),
        },
      }),
      KEY_VAULT_URL: vault.url,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      AZURE_AUTHORITY_HOST: entra.url,
      HTTPS_PROXY: `http://${PROXY.user}:${PROXY.password}@127.0.0.1:${proxy.port}`,
      // test/run.js puts 127.0.0.1 in the process's NO_PROXY; this runtime's is empty.
      NO_PROXY: '',
    };
    const line = (...args: unknown[]) => logs.push(args.map(String).join(' '));
    const r = new MailRuntime({ env, logger: createLogger({ log: line, warn: line, error: line }) });
    runtimes.push(r);
    return r;
  }

  async function subjects(r: MailRuntime, name: 'smtp' | 'pop3'): Promise<string[]> {
    const session = await r.reader(r.profile(name) as Parameters<MailRuntime['reader']>[0]).open();
    const found: string[] = [];
    try {
      for await (const message of session.messages(undefined, { limit: 10 })) found.push((await simpleParser((await message.openSource()) as Readable)).subject ?? '');
    } finally {
      await session.close();
    }
    return found;
  }

  it('sends through Postfix and Graph and reads through Dovecot\'s IMAP and POP3, every connection a CONNECT in tinyproxy\'s log', async () => {
    const r = runtime();
    await sendMail(r, { profile: 'smtp', from: MAILBOX, to: MAILBOX, subject: 'through tinyproxy', text: 'via Postfix' });
    await servers.waitForMessages(MAILBOX, 1);
    assert.deepEqual(await subjects(r, 'smtp'), ['through tinyproxy']);
    assert.deepEqual(await subjects(r, 'pop3'), ['through tinyproxy']);
    await sendMail(r, { profile: 'graph', from: MAILBOX, to: 'ann@example.com', subject: 'through tinyproxy', text: 'via Graph' });
    assert.equal(graph.sent.length, 1);
    await r.close();

    const connects = proxy.connects();
    const count = (endpoint: string) => connects.filter((c) => c === `127.0.0.1:${portOf(endpoint)}`).length;
    const serverLogs = servers.logs();
    // One CONNECT per session each server saw logging in (the suite's own port probes at start-up never do): nothing reached them around the proxy.
    const smtpSessions = (serverLogs.match(/postfix\/smtpd\[\d+\]: \w+: client=localhost\[127\.0\.0\.1\], sasl_method=XOAUTH2, sasl_username=helpdesk@contoso\.com/g) ?? []).length;
    const imapLogins = (serverLogs.match(/imap-login: Info: Login: user=<helpdesk@contoso\.com>/g) ?? []).length;
    const pop3Logins = (serverLogs.match(/pop3-login: Info: Login: user=<helpdesk@contoso\.com>/g) ?? []).length;
    assert.ok(smtpSessions === 1 && imapLogins === 1 && pop3Logins === 1, `sessions: smtp ${smtpSessions}, imap ${imapLogins}, pop3 ${pop3Logins}\n${serverLogs}`);
    assert.equal(count(servers.smtp), smtpSessions, proxy.log());
    assert.equal(count(servers.imap), imapLogins, proxy.log());
    assert.equal(count(servers.pop3), pop3Logins, proxy.log());
    for (const [what, endpoint] of [['Graph', graph.url], ['the token endpoint', entra.url], ['Key Vault', vault.url]] as const) {
      assert.ok(count(endpoint) >= 1, `${what} is not in tinyproxy's log:\n${proxy.log()}`);
    }
    // Every CONNECT in the log was to one of these servers, and none carried the password into the app's logs.
    const known = new Set([servers.smtp, servers.imap, servers.pop3, graph.url, entra.url, vault.url].map((e) => `127.0.0.1:${portOf(e)}`));
    assert.deepEqual(connects.filter((c) => !known.has(c)), []);
    assert.ok(!logs.join('\n').includes(PROXY.password));
  });

  it('a port tinyproxy does not allow (ConnectPort) fails the SMTP send with EPROXY 403 naming the profile and the proxy', async () => {
    const r = runtime({ smtp: servers.submissions });
    const error = await mailErrorFrom(sendMail(r, { profile: 'smtp', from: MAILBOX, to: MAILBOX, subject: 'refused', text: 'nothing' }));
    assert.equal(error.code, 'EPROXY', error.message);
    assert.equal(error.providerCode, '403');
    assert.equal(error.profile, 'smtp');
    assert.match(error.message, new RegExp(`the proxy http://127\\.0\\.0\\.1:${proxy.port} refused the tunnel to ${servers.submissions.replace(/\./g, '\\.')}`));
    assert.match(error.hint ?? '', new RegExp(`allow CONNECT to port ${portOf(servers.submissions)}`));
    assert.ok(!JSON.stringify({ m: error.message, h: error.hint }).includes(PROXY.password));
    assert.ok(proxy.connects().includes(servers.submissions), proxy.log());
  });
});
