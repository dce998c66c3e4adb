import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../shared/log.js';
import { NoProxy, ProxyRouter } from '../../shared/network/proxy.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { redact } from '../../shared/redact.js';
import { MailRuntime } from '../../shared/runtime.js';
import { mailErrorOf } from '../support/mailError.js';

function runtime(env: NodeJS.ProcessEnv): MailRuntime {
  return new MailRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail', ...env }, logger: silentLogger });
}

const profileWith = (proxy: unknown) =>
  parseProfiles(
    { profiles: { support: { mailbox: 'support@contoso.com', tenantId: 'contoso.onmicrosoft.com', clientId: 'app', auth: { type: 'clientSecret', secret: 'support-secret' }, send: { via: 'smtp' }, proxy } } },
    'test',
  ).profiles.get('support')!;

describe('NO_PROXY: the hosts reached without the proxy', () => {
  const list = NoProxy.parse('contoso.com, .fabrikam.com,*.tailspin.com 10.0.0.0/8, 192.168.1.7, [fd00::1]:8443, vault.example.net:443, fd12:3456::/32');
  for (const [host, port, direct] of [
    ['contoso.com', 443, true],
    ['mail.contoso.com', 587, true],
    ['notcontoso.com', 443, false],
    ['fabrikam.com', 443, true],
    ['a.b.fabrikam.com', 993, true],
    ['tailspin.com', 443, true],
    ['10.20.30.40', 995, true],
    ['11.0.0.1', 995, false],
    ['192.168.1.7', 25, true],
    ['192.168.1.8', 25, false],
    ['fd00::1', 8443, true],
    ['fd00::1', 443, false],
    ['vault.example.net', 443, true],
    ['vault.example.net', 8443, false],
    ['fd12:3456::9', 443, true],
    ['login.microsoftonline.com', 443, false],
  ] as const) {
    it(`${host}:${port} is ${direct ? 'direct' : 'through the proxy'}`, () => {
      assert.equal(list.matches({ host, port }), direct);
    });
  }

  it('* makes every host direct; an empty list none', () => {
    assert.equal(NoProxy.parse('*').matches({ host: 'smtp.office365.com', port: 587 }), true);
    assert.equal(NoProxy.parse('').matches({ host: 'smtp.office365.com', port: 587 }), false);
    assert.equal(NoProxy.parse(undefined).empty, true);
  });

  for (const entry of ['contoso..com', 'a$b.com', 'contoso.com:99999', '10.0.0.0/40', 'http://contoso.com']) {
    it(`"${entry}" is ECONFIG naming NO_PROXY`, () => {
      const error = mailErrorOf(() => runtime({ NO_PROXY: entry }));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, 'NO_PROXY');
    });
  }

  it('no_proxy (lower case) is read when NO_PROXY is not set', () => {
    assert.equal(runtime({ HTTPS_PROXY: 'http://proxy.contoso.com:3128', no_proxy: '.contoso.com' }).settings.noProxy.matches({ host: 'vault.contoso.com', port: 443 }), true);
  });
});

describe('HTTPS_PROXY: the app-wide proxy', () => {
  it('is parsed into host, port and credentials; its password is registered for redaction', () => {
    const settings = runtime({ HTTPS_PROXY: 'http://svc:s3cret-proxy-pass@proxy.contoso.com:3128' }).settings;
    assert.deepEqual(settings.httpsProxy, { protocol: 'http:', host: 'proxy.contoso.com', port: 3128, username: 'svc', password: 's3cret-proxy-pass', field: 'HTTPS_PROXY' });
    assert.equal(redact('proxy said s3cret-proxy-pass'), 'proxy said [redacted]');
  });

  it('takes the scheme\'s port when the URL names none, and https_proxy when HTTPS_PROXY is not set', () => {
    assert.equal(runtime({ HTTPS_PROXY: 'https://proxy.contoso.com' }).settings.httpsProxy?.port, 443);
    assert.equal(runtime({ https_proxy: 'http://proxy.contoso.com' }).settings.httpsProxy?.port, 80);
    assert.equal(runtime({}).settings.httpsProxy, undefined);
  });

  for (const value of ['socks5://proxy.contoso.com:1080', 'http://proxy.contoso.com:3128/path', 'proxy.contoso.com:3128', 'ftp://user:hunter2-secret@proxy:21']) {
    it(`"${value}" is ECONFIG naming HTTPS_PROXY, without the value in the message`, () => {
      const error = mailErrorOf(() => runtime({ HTTPS_PROXY: value }));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, 'HTTPS_PROXY');
      assert.ok(!error.message.includes('hunter2-secret'));
    });
  }
});

describe('a profile\'s proxy', () => {
  it('a URL, or { url, passwordSecret } with the user in the URL', () => {
    assert.deepEqual(profileWith('http://proxy.contoso.com:8080').proxy, { protocol: 'http:', host: 'proxy.contoso.com', port: 8080, field: 'profiles.support.proxy' });
    assert.deepEqual(profileWith({ url: 'https://mail-svc@proxy.contoso.com:8443', passwordSecret: 'support-proxy-password' }).proxy, {
      protocol: 'https:', host: 'proxy.contoso.com', port: 8443, username: 'mail-svc', passwordSecret: 'support-proxy-password', field: 'profiles.support.proxy',
    });
  });

  for (const [proxy, field, message] of [
    ['http://svc:in-the-document@proxy.contoso.com:8080', 'proxy', /must not carry a password: name the secret that holds it in proxy\.passwordSecret/],
    [{ url: 'http://proxy.contoso.com:8080', passwordSecret: 'support-proxy-password' }, 'proxy', /must name the user/],
    ['socks5://proxy.contoso.com:1080', 'proxy', /http:\/\/ or https:\/\//],
    [{ url: 'http://proxy.contoso.com:8080', password: 'x' }, 'proxy', /./],
  ] as const) {
    it(`${JSON.stringify(proxy)} is ECONFIG naming the profile and the field`, () => {
      const error = mailErrorOf(() => profileWith(proxy));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.profile, 'support');
      assert.ok(error.field?.startsWith(field), error.field);
      assert.match(error.message, message);
      assert.match(error.hint ?? '', /profiles\.support\.proxy/);
    });
  }
});

describe('the router: which connections go through the proxy', () => {
  const server = { protocol: 'http:' as const, host: 'proxy.contoso.com', port: 3128, field: 'HTTPS_PROXY' };

  it('the managed identity endpoint is always direct: IMDS, and IDENTITY_ENDPOINT\'s host and port', async () => {
    const settings = runtime({ HTTPS_PROXY: 'http://proxy.contoso.com:3128', IDENTITY_ENDPOINT: 'http://localhost:42356/msi/token' }).settings;
    const router = new ProxyRouter({ server, noProxy: settings.noProxy, direct: settings.managedIdentityEndpoints });
    assert.equal(await router.routeUrl('http://169.254.169.254/metadata/identity/oauth2/token'), undefined);
    assert.equal(await router.routeUrl('http://localhost:42356/msi/token'), undefined);
    assert.equal((await router.routeUrl('http://localhost:8080/other'))?.server, server);
    assert.equal((await router.routeUrl('https://login.microsoftonline.com/contoso/oauth2/v2.0/token'))?.server, server);
  });

  it('reads the password secret once, on the first connection that needs it', async () => {
    const reads: string[] = [];
    const router = new ProxyRouter({ server: { ...server, username: 'svc', passwordSecret: 'proxy-password' }, noProxy: NoProxy.NONE, readSecret: async (name) => (reads.push(name), 'the-proxy-password') });
    assert.deepEqual(reads, []);
    assert.equal((await router.route({ host: 'smtp.office365.com', port: 587 }))?.password, 'the-proxy-password');
    await router.route({ host: 'outlook.office365.com', port: 993 });
    assert.deepEqual(reads, ['proxy-password']);
  });

  it('with no proxy configured every connection is direct, whatever NO_PROXY says', async () => {
    assert.equal(await new ProxyRouter({ noProxy: NoProxy.NONE }).route({ host: 'smtp.office365.com', port: 587 }), undefined);
  });
});
