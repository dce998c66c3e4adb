import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { profiles } from '../../functions/profiles.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';

const SECRET_VALUE = 'Zq8~support-secret-value';

const configured = {
  MAIL_PROFILES: JSON.stringify({
    profiles: {
      support: {
        mailbox: 'support@contoso.com',
        tenantId: 'contoso.onmicrosoft.com',
        clientId: '00000000-0000-0000-0000-000000000001',
        auth: { type: 'clientSecret', secret: 'support-client-secret' },
        send: { via: 'smtp', allowedFrom: ['support@contoso.com', '*@help.contoso.com'] },
        receive: { via: 'imap', deliver: { webhook: { url: 'https://app.example.com/hook', signingSecret: 'support-hook-key' } } },
      },
      alerts: {
        mailbox: 'alerts@agency.gov',
        tenantId: 'agency-tenant',
        clientId: '00000000-0000-0000-0000-000000000002',
        auth: { type: 'certificate', certificate: 'alerts-cert' },
        send: { via: 'graph' },
        cloud: 'usgov',
      },
      robot: { mailbox: 'robot@contoso.com', auth: { type: 'managedIdentity' }, send: { via: 'graph' } },
    },
  }),
  SUPPORT_CLIENT_SECRET: SECRET_VALUE,
};

function get(route: string): HttpRequest {
  return new HttpRequest({ method: 'GET', url: `http://localhost/api/${route}` });
}

function context(name: string): InvocationContext {
  return new InvocationContext({ invocationId: `inv-${name}`, functionName: name, logHandler: () => {} });
}

function json(response: HttpResponseInit): Record<string, unknown> {
  assert.equal(typeof response.body, 'string');
  return JSON.parse(response.body as string) as Record<string, unknown>;
}

describe('GET /api/profiles', () => {
  afterEach(() => setRuntime(undefined));

  it('lists each profile with mailbox, transports, auth type and cloud, and no secret nor secret name', async () => {
    setRuntime(new MailRuntime({ env: configured }));
    const response = await profiles(get('profiles'), context('profiles'));
    assert.equal(response.status, 200);
    assert.deepEqual(json(response), {
      source: 'MAIL_PROFILES',
      profiles: [
        { name: 'support', mailbox: 'support@contoso.com', auth: 'clientSecret', cloud: 'public', send: { via: 'smtp', allowedFrom: ['support@contoso.com', '*@help.contoso.com'] }, receive: { via: 'imap' } },
        { name: 'alerts', mailbox: 'alerts@agency.gov', auth: 'certificate', cloud: 'usgov', send: { via: 'graph', allowedFrom: ['alerts@agency.gov'] } },
        { name: 'robot', mailbox: 'robot@contoso.com', auth: 'managedIdentity', cloud: 'public', send: { via: 'graph', allowedFrom: ['robot@contoso.com'] } },
      ],
    });
    for (const hidden of [SECRET_VALUE, 'support-client-secret', 'alerts-cert', 'support-hook-key']) assert.ok(!(response.body as string).includes(hidden), hidden);
  });

  it('shows the built-in local profile when nothing is configured', async () => {
    setRuntime(new MailRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail' } }));
    const body = json(await profiles(get('profiles'), context('profiles')));
    assert.equal(body.source, 'built-in');
    assert.deepEqual(body.profiles, [
      { name: 'local', mailbox: 'local@localhost.localdomain', auth: 'none', cloud: 'public', send: { via: 'file', allowedFrom: ['*@localhost.localdomain'] }, receive: { via: 'file' } },
    ]);
  });
});
