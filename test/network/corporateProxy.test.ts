import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { MailError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { NoProxy, ProxyRouter, proxyServer } from '../../shared/network/proxy.js';
import { MailRuntime } from '../../shared/runtime.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { WebhookSink } from '../../shared/sinks/webhookSink.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { Pop3Peer } from '../peers/pop3Peer.js';
import { portNobodyListensOn } from '../contract/loopback.js';
import { ProxyPeer } from '../peers/proxyPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';
import { mailErrorFrom } from '../support/mailError.js';
import { setProcessEnv } from '../support/processEnv.js';

const TENANT = 'contoso-tenant';
/** The Function App's own identity, which reads the vault through DefaultAzureCredential (AZURE_*). */
const VAULT_READER = { tenantId: TENANT, clientId: 'function-app', secret: 'function-app-vault-secret' };
const APP = { tenantId: TENANT, clientId: 'mail-app', secret: 'mail-app-client-secret-1' };
/** An app no test has obtained a token for: @azure/identity keeps tokens across credentials, so a refused token request needs a client id of its own. */
const FRESH_APP = { tenantId: TENANT, clientId: 'fresh-mail-app', secret: APP.secret };
const PROXY_USER = 'mail-svc';
const PROXY_PASSWORD = 'proxy-password-4f9a7c2e';
const SENDER = 'send-desk@contoso.com';
const READER = 'read-desk@contoso.com';
const portOf = (endpoint: string) => Number(/:(\d+)$/.exec(endpoint)![1]);
const DELEGATED_APP = { tenantId: TENANT, clientId: 'delegated-mail-app', secret: 'delegated-mail-app-secret' };
const OUTLOOK = 'https://outlook.office365.com/.default';

/**
 * Issue 9, item 4: an outbound proxy, app-wide (HTTPS_PROXY, for the vault and the app's own
 * identity) and per profile (`proxy`, for everything the profile connects to), with NO_PROXY
 * honoured. The proxies are real HTTP proxies on loopback (test/peers/proxyPeer.ts), and every
 * client is the real one: @azure/identity, SecretClient, the Graph client, nodemailer, imapflow and
 * our POP3 client. The runtime gets its env explicitly: test/run.js puts 127.0.0.1 in the process's
 * NO_PROXY, which must not decide anything here.
 */
describe('an outbound proxy carries every connection, app-wide and per profile', () => {
  const entra = new TokenEndpointPeer();
  const vault = new KeyVaultPeer(entra, TENANT);
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [SENDER] });
  const graph = new GraphPeer(entra);
  const imap = new ImapPeer(entra, { mailbox: READER });
  const pop3 = new Pop3Peer(entra, { mailbox: READER });
  /** HTTPS_PROXY: the vault and its credential. */
  const appProxy = new ProxyPeer();
  /** The profiles' own proxy, which wants credentials. */
  const profileProxy = new ProxyPeer({ credentials: { user: PROXY_USER, password: PROXY_PASSWORD } });
  const logs: string[] = [];
  let restoreEnv: () => void;

  before(async () => {
    await Promise.all([entra.start(), vault.start(), smtp.start(), graph.start(), imap.start(), pop3.start(), appProxy.start(), profileProxy.start()]);
    entra.register(VAULT_READER);
    entra.register(APP);
    entra.register(FRESH_APP);
    entra.register(DELEGATED_APP);
    vault.setSecret('delegated-rt', entra.grantRefreshToken({ tenantId: TENANT, clientId: DELEGATED_APP.clientId, upn: SENDER, scopes: ['https://outlook.office365.com/SMTP.Send'] }));
    vault.setSecret('delegated-secret', DELEGATED_APP.secret);
    graph.addMailbox(SENDER);
    vault.setSecret('mail-app-secret', APP.secret);
    vault.setSecret('proxy-password', PROXY_PASSWORD);
    imap.append('INBOX', 'Subject: via imap\r\n\r\nhello\r\n');
    pop3.add('Subject: via pop3\r\n\r\nhello\r\n');
    restoreEnv = setProcessEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: entra.url });
  });
  after(async () => {
    restoreEnv();
    await Promise.all([graph.stop(), smtp.stop(), vault.stop(), imap.stop(), pop3.stop(), appProxy.stop(), profileProxy.stop()]);
    await entra.stop();
  });
  beforeEach(() => {
    appProxy.tunnels.length = 0;
    profileProxy.tunnels.length = 0;
    appProxy.deniedPorts.clear();
    profileProxy.deniedPorts.clear();
    logs.length = 0;
  });

  interface Options {
    proxy?: unknown;
    clientId?: string;
    noProxy?: string;
    httpsProxy?: string;
  }

  function runtime(options: Options = {}): MailRuntime {
    const proxy = 'proxy' in options ? options.proxy : { url: profileProxy.url(PROXY_USER), passwordSecret: 'proxy-password' };
    const profile = (mailbox: string, section: Record<string, unknown>) => ({
      mailbox,
      tenantId: TENANT,
      clientId: options.clientId ?? APP.clientId,
      auth: { type: 'clientSecret', secret: 'mail-app-secret' },
      ...section,
      ...(proxy !== undefined && { proxy }),
      endpoints: { authority: entra.url, smtp: smtp.endpoint, graph: graph.url, imap: imap.endpoint, pop3: pop3.endpoint },
    });
    const deliver = { queue: { name: 'mail-incoming' } };
    const env = {
      MAIL_PROFILES: JSON.stringify({
        profiles: {
          smtp: profile(SENDER, { send: { via: 'smtp' } }),
          graph: profile(SENDER, { send: { via: 'graph' } }),
          imap: profile(READER, { receive: { via: 'imap', deliver } }),
          pop3: profile(READER, { receive: { via: 'pop3', deliver } }),
          delegated: { ...profile(SENDER, { send: { via: 'smtp' } }), clientId: DELEGATED_APP.clientId, auth: { type: 'delegated', refreshToken: 'delegated-rt', secret: 'delegated-secret' } },
        },
      }),
      KEY_VAULT_URL: vault.url,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      AZURE_AUTHORITY_HOST: entra.url,
      HTTPS_PROXY: options.httpsProxy ?? appProxy.url(),
      NO_PROXY: options.noProxy ?? '',
    };
    const line = (l: unknown) => logs.push(String(l));
    return new MailRuntime({ env, logger: createLogger({ log: line, warn: line, error: line }) });
  }

  async function readOne(r: MailRuntime, name: 'imap' | 'pop3'): Promise<number> {
    const profile = r.profile(name) as Parameters<MailRuntime['reader']>[0];
    const session = await r.reader(profile).open();
    let count = 0;
    try {
      for await (const message of session.messages(undefined, { limit: 10 })) {
        await (await message.openSource()).resume();
        count++;
      }
    } finally {
      await session.close();
    }
    return count;
  }

  /** What a person sees of an error: none of it may carry the proxy's password. */
  function assertNoPassword(error: MailError): void {
    const shown = JSON.stringify({ message: error.message, hint: error.hint, field: error.field, providerCode: error.providerCode });
    assert.ok(!shown.includes(PROXY_PASSWORD), shown);
    assert.ok(!logs.join('\n').includes(PROXY_PASSWORD));
  }

  it('SMTP, Graph, IMAP and POP3, and the token requests, go through the profile\'s proxy; the vault and its credential through HTTPS_PROXY', async () => {
    const r = runtime();
    try {
      await sendMail(r, { profile: 'smtp', from: SENDER, to: 'ann@example.com', subject: 'through the proxy', text: 'one' });
      await sendMail(r, { profile: 'graph', from: SENDER, to: 'ann@example.com', subject: 'through the proxy', text: 'two' });
      assert.equal(await readOne(r, 'imap'), 1);
      assert.equal(await readOne(r, 'pop3'), 1);
    } finally {
      await r.close();
    }
    assert.equal(smtp.messages.length, 1);
    assert.equal(graph.sent.length, 1);

    for (const [what, port] of [['SMTP', portOf(smtp.endpoint)], ['Graph', portOf(graph.url)], ['IMAP', portOf(imap.endpoint)], ['POP3', portOf(pop3.endpoint)], ['token endpoint', portOf(entra.url)]] as const) {
      assert.ok(profileProxy.openedTo(port).length > 0, `${what} did not go through the profile's proxy: ${JSON.stringify(profileProxy.tunnels)}`);
      assert.ok(profileProxy.openedTo(port).every((t) => t.user === PROXY_USER));
    }
    const vaultPort = portOf(vault.url);
    assert.ok(appProxy.openedTo(vaultPort).length > 0, `the vault was not reached through HTTPS_PROXY: ${JSON.stringify(appProxy.tunnels)}`);
    assert.ok(appProxy.openedTo(portOf(entra.url)).length > 0, 'the vault credential\'s token request did not go through HTTPS_PROXY');
    // Each proxy carried only its own: no vault through the profile's proxy, no mail server through the app's.
    assert.deepEqual(profileProxy.tunnels.filter((t) => t.port === vaultPort), []);
    assert.deepEqual(appProxy.tunnels.filter((t) => t.port !== vaultPort && t.port !== portOf(entra.url)), []);
    assert.deepEqual([...appProxy.plainRequests, ...profileProxy.plainRequests], []);
    assert.ok(!logs.join('\n').includes(PROXY_PASSWORD));
  });

  it('without a proxy of its own, a profile\'s connections go through HTTPS_PROXY', async () => {
    const r = runtime({ proxy: undefined });
    try {
      await sendMail(r, { profile: 'smtp', from: SENDER, to: 'ann@example.com', subject: 'app-wide', text: 'three' });
    } finally {
      await r.close();
    }
    assert.ok(appProxy.openedTo(portOf(smtp.endpoint)).length > 0, JSON.stringify(appProxy.tunnels));
    assert.deepEqual(profileProxy.tunnels, []);
  });

  it('NO_PROXY is honoured: a listed host:port is reached directly, the rest still through the proxy', async () => {
    const r = runtime({ noProxy: `127.0.0.1:${portOf(smtp.endpoint)}, 127.0.0.1:${portOf(vault.url)}` });
    const before = smtp.messages.length;
    try {
      await sendMail(r, { profile: 'smtp', from: SENDER, to: 'ann@example.com', subject: 'direct', text: 'four' });
    } finally {
      await r.close();
    }
    assert.equal(smtp.messages.length, before + 1);
    assert.deepEqual(profileProxy.tunnels.filter((t) => t.port === portOf(smtp.endpoint)), []);
    assert.deepEqual(appProxy.tunnels.filter((t) => t.port === portOf(vault.url)), []);
    assert.ok(profileProxy.openedTo(portOf(entra.url)).length > 0, 'the token request should still go through the proxy');
  });

  it('a proxy that wants other credentials (407) fails the SMTP send with EPROXY naming the profile and the proxy, not the password', async () => {
    vault.setSecret('proxy-password', 'not-the-password');
    // The token endpoint directly, so that the refusal met is SMTP's own.
    const r = runtime({ noProxy: `127.0.0.1:${portOf(entra.url)}` });
    try {
      const error = await mailErrorFrom(sendMail(r, { profile: 'smtp', from: SENDER, to: 'ann@example.com', subject: 'refused', text: 'five' }));
      assert.equal(error.code, 'EPROXY');
      assert.equal(error.providerCode, '407');
      assert.match(error.message, /profile "smtp"/);
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${profileProxy.port}`));
      assert.match(error.hint ?? '', new RegExp(`user "${PROXY_USER}".*profiles\\.smtp\\.proxy.*secret "proxy-password"`));
      assertNoPassword(error);
      assert.ok(profileProxy.tunnels.some((t) => t.port === portOf(smtp.endpoint) && t.status === 407));
    } finally {
      vault.setSecret('proxy-password', PROXY_PASSWORD);
      await r.close();
    }
  });

  it('a proxy that refuses the tunnel (403) fails IMAP and Graph with EPROXY and a hint to allow the port', async () => {
    profileProxy.deniedPorts.add(portOf(imap.endpoint));
    profileProxy.deniedPorts.add(portOf(graph.url));
    const r = runtime();
    try {
      for (const [what, operation, port] of [
        ['imap', () => readOne(r, 'imap'), portOf(imap.endpoint)],
        ['graph', () => sendMail(r, { profile: 'graph', from: SENDER, to: 'ann@example.com', subject: 'refused', text: 'six' }), portOf(graph.url)],
      ] as const) {
        const error = await mailErrorFrom(operation());
        assert.equal(error.code, 'EPROXY', `${what}: ${error.code} ${error.message}`);
        assert.equal(error.providerCode, '403');
        assert.equal(error.profile, what);
        assert.match(error.hint ?? '', new RegExp(`allow CONNECT to port ${port} of 127\\.0\\.0\\.1`));
        assertNoPassword(error);
      }
    } finally {
      await r.close();
    }
  });

  it('a proxy that is not there (connection refused) fails POP3 and the token request with EPROXY', async () => {
    const port = await portNobodyListensOn();
    const r = runtime({ proxy: `http://127.0.0.1:${port}`, clientId: FRESH_APP.clientId });
    try {
      // Graph asks for the token before its first request (nodemailer would connect first).
      const token = await mailErrorFrom(sendMail(r, { profile: 'graph', from: SENDER, to: 'ann@example.com', subject: 'no proxy', text: 'seven' }));
      assert.equal(token.code, 'EPROXY', token.message);
      assert.match(token.message, new RegExp(`the proxy http://127\\.0\\.0\\.1:${port} could not be reached \\(ECONNREFUSED\\) to connect to 127\\.0\\.0\\.1:${portOf(entra.url)}`));
      assert.equal(token.profile, 'graph');
      assert.match(token.hint ?? '', /profiles\.graph\.proxy/);
    } finally {
      await r.close();
    }
    const direct = runtime({ proxy: `http://127.0.0.1:${port}`, noProxy: `127.0.0.1:${portOf(entra.url)}` });
    try {
      const error = await mailErrorFrom(readOne(direct, 'pop3'));
      assert.equal(error.code, 'EPROXY', error.message);
      assert.equal(error.profile, 'pop3');
      assert.match(error.message, /ECONNREFUSED/);
      assert.match(error.hint ?? '', new RegExp(`Nothing answers at the proxy http://127\\.0\\.0\\.1:${port}`));
    } finally {
      await direct.close();
    }
  });

  it('a delegated profile redeems its refresh token through the proxy (MSAL\'s network client), and a refusal there is EPROXY', async () => {
    const r = runtime();
    try {
      const token = await r.tokens(r.profile('delegated')).getToken(OUTLOOK);
      assert.equal(entra.validate(token, 'https://outlook.office365.com')?.via, 'delegated');
    } finally {
      await r.close();
    }
    assert.ok(profileProxy.openedTo(portOf(entra.url)).some((t) => t.user === PROXY_USER), JSON.stringify(profileProxy.tunnels));
    assert.deepEqual(appProxy.tunnels.filter((t) => t.port === portOf(entra.url) && t.status === 200).length > 0, true, 'the vault credential still goes through HTTPS_PROXY');

    profileProxy.deniedPorts.add(portOf(entra.url));
    const refused = runtime();
    try {
      const error = await mailErrorFrom(refused.tokens(refused.profile('delegated')).getToken(OUTLOOK));
      assert.equal(error.code, 'EPROXY', error.message);
      assert.equal(error.providerCode, '403');
      assert.equal(error.profile, 'delegated');
      assertNoPassword(error);
    } finally {
      await refused.close();
    }
  });

  it('HTTPS_PROXY refusing the tunnel to the vault fails the secret read with EPROXY, not as the vault refusing access', async () => {
    appProxy.deniedPorts.add(portOf(vault.url));
    const r = runtime();
    try {
      const error = await mailErrorFrom(sendMail(r, { profile: 'smtp', from: SENDER, to: 'ann@example.com', subject: 'no vault', text: 'eight' }));
      assert.equal(error.code, 'EPROXY', error.message);
      assert.equal(error.field, 'HTTPS_PROXY');
      assert.match(error.hint ?? '', /the app setting HTTPS_PROXY/);
    } finally {
      await r.close();
    }
  });
});

describe('a profile\'s webhook deliveries go through its proxy', () => {
  const webhook = new WebhookReceiverPeer();
  const proxy = new ProxyPeer();
  before(async () => {
    await Promise.all([webhook.start(), proxy.start()]);
  });
  after(async () => {
    await Promise.all([webhook.stop(), proxy.stop()]);
  });
  const message = { id: 'msg-proxied' } as DeliveredMessage;
  const sink = () =>
    new WebhookSink({
      url: webhook.url,
      signingSecret: 'hook-key',
      secrets: new EnvironmentSecretStore({ HOOK_KEY: 'hook-signing-key-value' }),
      retryDelayMs: 20,
      proxy: new ProxyRouter({ server: proxyServer(proxy.url(), 'profiles.hooks.proxy'), noProxy: NoProxy.NONE, profile: 'hooks' }),
    });

  it('the signed POST reaches the webhook through a tunnel; a refusal is EPROXY and leaves the message undelivered', async () => {
    await sink().deliver(message);
    assert.equal(webhook.received.length, 1);
    assert.ok(proxy.openedTo(Number(new URL(webhook.url).port)).length > 0, JSON.stringify(proxy.tunnels));

    proxy.deniedPorts.add(Number(new URL(webhook.url).port));
    const error = await mailErrorFrom(sink().deliver(message));
    assert.equal(error.code, 'EPROXY', error.message);
    assert.equal(error.profile, 'hooks');
    assert.equal(webhook.received.length, 1);
  });
});
