import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';

const graphProfile = {
  mailbox: 'desk@contoso.com',
  tenantId: 'contoso.onmicrosoft.com',
  clientId: 'desk-app',
  auth: { type: 'clientSecret', secret: 'desk-secret' },
  send: { via: 'graph' },
  receive: { via: 'graph', deliver: { queue: { name: 'mail-in' } } },
};
const smtpProfile = { ...graphProfile, send: { via: 'smtp' }, receive: undefined };

function runtime(): MailRuntime {
  return new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { desk: graphProfile, relay: smtpProfile } }), AzureWebJobsStorage: 'UseDevelopmentStorage=true' }, logger: silentLogger });
}

type Receiving = Parameters<MailRuntime['reader']>[0];
const clientOf = (transport: object) => (transport as { graph?: unknown }).graph;

describe('the runtime owns every per-profile resource', () => {
  it('makes each once per profile: token provider, sender, reader, sink, and one Graph client for the sender and the reader', () => {
    const r = runtime();
    const desk = r.profile('desk') as Receiving;
    assert.equal(r.tokens(desk), r.tokens(desk));
    assert.equal(r.sender(desk), r.sender(desk));
    assert.equal(r.reader(desk), r.reader(desk));
    assert.equal(r.sink(desk), r.sink(desk));
    assert.ok(clientOf(r.sender(desk)) !== undefined);
    assert.equal(clientOf(r.sender(desk)), clientOf(r.reader(desk)), 'the sender and the reader share the Graph client');
    assert.notEqual(r.tokens(desk), r.tokens(r.profile('relay')), 'each profile has its own');
  });

  it('close() releases them all: every sender is closed, and the next use makes them anew', async () => {
    const r = runtime();
    const desk = r.profile('desk') as Receiving;
    const relay = r.profile('relay');
    const senders = [r.sender(desk), r.sender(relay)];
    const closed: string[] = [];
    for (const s of senders) {
      const close = s.close?.bind(s);
      s.close = async () => {
        closed.push(s.via);
        await close?.();
      };
    }
    const reader = r.reader(desk);
    await r.close();
    assert.deepEqual(closed.sort(), ['graph', 'smtp']);
    assert.notEqual(r.sender(relay), senders[1]);
    assert.notEqual(r.reader(desk), reader);
  });

  it('one MailState: the poll, the send queue and the health endpoints use the same storage account', () => {
    const r = runtime();
    assert.equal(r.state.receive.account, r.state.send.account);
    assert.equal(r.state.receive, r.state.receive);
  });
});
