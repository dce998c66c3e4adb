import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { authorityOptions, exchangeScope, graphScope, isKnownAuthority, parseHostPort, resolveEndpoints, tokenExchangeScope } from '../../shared/config/cloud.js';
import { parseProfiles } from '../../shared/profiles/load.js';

describe('a profile\'s cloud chooses authority, Graph and mail hosts and the token scopes', () => {
  const expected = {
    public: {
      authority: 'https://login.microsoftonline.com',
      graph: 'https://graph.microsoft.com',
      smtp: { host: 'smtp.office365.com', port: 587 },
      imap: { host: 'outlook.office365.com', port: 993 },
      pop3: { host: 'outlook.office365.com', port: 995 },
      graphScope: 'https://graph.microsoft.com/.default',
      exchangeScope: 'https://outlook.office365.com/.default',
      tokenExchangeScope: 'api://AzureADTokenExchange/.default',
    },
    usgov: {
      authority: 'https://login.microsoftonline.us',
      graph: 'https://graph.microsoft.us',
      smtp: { host: 'smtp.office365.us', port: 587 },
      imap: { host: 'outlook.office365.us', port: 993 },
      pop3: { host: 'outlook.office365.us', port: 995 },
      graphScope: 'https://graph.microsoft.us/.default',
      exchangeScope: 'https://outlook.office365.us/.default',
      tokenExchangeScope: 'api://AzureADTokenExchangeUSGov/.default',
    },
    china: {
      authority: 'https://login.chinacloudapi.cn',
      graph: 'https://microsoftgraph.chinacloudapi.cn',
      smtp: { host: 'smtp.partner.outlook.cn', port: 587 },
      imap: { host: 'partner.outlook.cn', port: 993 },
      pop3: { host: 'partner.outlook.cn', port: 995 },
      graphScope: 'https://microsoftgraph.chinacloudapi.cn/.default',
      exchangeScope: 'https://partner.outlook.cn/.default',
      tokenExchangeScope: 'api://AzureADTokenExchangeChina/.default',
    },
  } as const;

  for (const [cloud, want] of Object.entries(expected)) {
    it(`${cloud}: hosts, ports and scopes`, () => {
      const p = parseProfiles({ profiles: { m: { mailbox: 'm@contoso.com', auth: { type: 'managedIdentity' }, send: { via: 'smtp' }, cloud } } }, 'test').profiles.get('m')!;
      const { graphScope: g, exchangeScope: x, tokenExchangeScope: t, ...hosts } = want;
      assert.deepEqual(
        { authority: p.endpoints.authority, graph: p.endpoints.graph, smtp: p.endpoints.smtp, imap: p.endpoints.imap, pop3: p.endpoints.pop3 },
        hosts,
      );
      assert.equal(graphScope(p.endpoints), g);
      assert.equal(exchangeScope(p.endpoints), x);
      assert.equal(tokenExchangeScope(p.endpoints), t);
      assert.equal(isKnownAuthority(p.endpoints.authority), true);
    });
  }

  it('endpoints override hosts but not the resources the scopes name', () => {
    const e = resolveEndpoints('usgov', {
      authority: 'https://127.0.0.1:8443/',
      graph: 'https://graph-proxy.contoso.us//',
      smtp: '127.0.0.1:2525',
      imap: '[::1]:1993',
      pop3: 'pop.contoso.us:1995',
    });
    assert.equal(e.authority, 'https://127.0.0.1:8443');
    assert.equal(e.graph, 'https://graph-proxy.contoso.us');
    assert.deepEqual(e.smtp, { host: '127.0.0.1', port: 2525 });
    assert.deepEqual(e.imap, { host: '::1', port: 1993 });
    assert.deepEqual(e.pop3, { host: 'pop.contoso.us', port: 1995 });
    assert.equal(graphScope(e), 'https://graph.microsoft.us/.default');
    assert.equal(exchangeScope(e), 'https://outlook.office365.us/.default');
    assert.equal(tokenExchangeScope(e), 'api://AzureADTokenExchangeUSGov/.default');
  });

  it('an override of one endpoint leaves the others at the cloud\'s hosts', () => {
    const e = resolveEndpoints('public', { smtp: 'smtp.relay.contoso.com:25' });
    assert.deepEqual(e.smtp, { host: 'smtp.relay.contoso.com', port: 25 });
    assert.equal(e.authority, 'https://login.microsoftonline.com');
    assert.deepEqual(e.imap, { host: 'outlook.office365.com', port: 993 });
  });

  it('host:port needs a port in range', () => {
    assert.deepEqual(parseHostPort(' smtp.example.test:587 '), { host: 'smtp.example.test', port: 587 });
    for (const bad of ['smtp.example.test', 'smtp.example.test:0', 'smtp.example.test:65536', ':25', 'a b:25', 'host:port']) {
      assert.equal(parseHostPort(bad), undefined, bad);
    }
  });

  it('only the clouds\' own authority hosts are known to MSAL; any other authority switches instance discovery off', () => {
    assert.equal(isKnownAuthority('https://login.microsoftonline.com/'), true);
    assert.equal(isKnownAuthority('https://LOGIN.MICROSOFTONLINE.US'), true);
    assert.equal(isKnownAuthority('https://127.0.0.1:8443'), false);
    assert.equal(isKnownAuthority('https://login.microsoftonline.com.evil.test'), false);
    assert.equal(isKnownAuthority('not a url'), false);
    assert.deepEqual(authorityOptions('https://login.chinacloudapi.cn'), { authorityHost: 'https://login.chinacloudapi.cn', disableInstanceDiscovery: false });
    assert.deepEqual(authorityOptions('https://127.0.0.1:8443'), { authorityHost: 'https://127.0.0.1:8443', disableInstanceDiscovery: true });
  });
});
