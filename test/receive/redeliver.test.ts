import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HttpRequest } from '@azure/functions';
import { QueueClient } from '@azure/storage-queue';
import { redeliver } from '../../functions/redeliver.js';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { setRuntime, type MailRuntime } from '../../shared/runtime.js';
import { ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';

const ADMIN_KEY = 'redeliver-admin-key-0c1f';
const OTHER_KEY = 'redeliver-other-key-9a7e';

/**
 * Issue 12, item 3: a consumer that lost its database asks again. POST /api/profiles/{name}/redeliver
 * (admin) delivers again, from the copies kept for receive.retainDays, the messages delivered by id
 * or in a time range, with the same stable ids, marked as a redelivery.
 */
describe('POST /api/profiles/{name}/redeliver', () => {
  const h = new ReceiveHarness();
  let runtime: MailRuntime;
  let ids: string[];

  before(async () => {
    await h.start();
    const inbox = h.folder('inbox');
    for (const [i, subject] of ['one', 'two', 'three'].entries()) {
      dropEml(inbox, `${subject}.eml`, await composeEml({ from: 'ann@fabrikam.example', to: 'support@contoso.com', subject, text: `body ${subject}`, messageId: `<${subject}@redeliver.test>` }), i + 1);
    }
    const queued = { mailbox: 'queue@contoso.com', auth: { type: 'none' }, receive: { via: 'file', folder: h.folder('queued'), deliver: { queue: { name: 'mail-redelivered' } } } };
    const none = { ...h.fileProfile(h.folder('none')), receive: { ...h.fileProfile(h.folder('none')).receive as object, retainDays: 0 } };
    runtime = h.runtime({ support: h.fileProfile(inbox), queued, none }, {
      MAIL_PROFILES: JSON.stringify({
        callers: { ops: { keySecret: 'ops-key', admin: true }, app: { keySecret: 'app-key', profiles: ['support'] } },
        profiles: { support: h.fileProfile(inbox), queued, none },
      }),
      OPS_KEY: ADMIN_KEY,
      APP_KEY: OTHER_KEY,
    });
    setRuntime(runtime);
    h.webhook.reset();
    const polled = await pollMailbox(runtime, 'support');
    assert.equal(polled.delivered, 3);
    ids = h.webhook.accepted<DeliveredMessage>().map((m) => m.id);
  });
  after(async () => {
    setRuntime(undefined);
    await h.stop();
  });

  async function post(name: string, body: unknown, key = ADMIN_KEY) {
    const response = await redeliver(new HttpRequest({ method: 'POST', url: `http://localhost/api/profiles/${name}/redeliver`, params: { name }, headers: { 'content-type': 'application/json', 'x-api-key': key }, body: { string: JSON.stringify(body) } }), { invocationId: 'r', log() {}, error() {}, warn() {} } as never);
    return { status: response.status, body: JSON.parse(String(response.body)) as Record<string, unknown>, type: (response.headers as Record<string, string>)['Content-Type'] };
  }

  it('by id: the same messages, the same ids and bodies, marked X-Mail-Redelivery; an unknown id is reported missing', async () => {
    const before = h.webhook.accepted<DeliveredMessage>();
    h.webhook.reset();
    const answer = await post('support', { ids: [ids[2], 'no-such-id', ids[0]] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { profile: 'support', redelivered: [ids[2], ids[0]], missing: ['no-such-id'], more: false });
    const hooks = h.webhook.received.filter((r) => r.status < 300);
    assert.deepEqual(hooks.map((r) => [r.headers['x-mail-id'], r.headers['x-mail-redelivery']]), [[ids[2], 'true'], [ids[0], 'true']]);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>(), [before.find((m) => m.id === ids[2]), before.find((m) => m.id === ids[0])]);
  });

  it('by delivery time: everything delivered in [from, to), oldest first', async () => {
    h.webhook.reset();
    const answer = await post('support', { from: new Date(Date.now() - 3_600_000).toISOString() });
    assert.deepEqual((answer.body.redelivered as string[]).slice().sort(), [...ids].sort());
    assert.equal(h.webhook.accepted().length, 3);
    h.webhook.reset();
    const none = await post('support', { from: new Date(Date.now() - 7_200_000).toISOString(), to: new Date(Date.now() - 3_600_000).toISOString() });
    assert.deepEqual(none.body.redelivered, []);
    assert.equal(h.webhook.received.length, 0);
  });

  it('to a queue: the message carries "redelivery": true beside its id', async () => {
    dropEml(runtime.profile('queued').receive!.folder, 'q.eml', await composeEml({ from: 'ann@fabrikam.example', to: 'queue@contoso.com', subject: 'queued', text: 'q', messageId: '<q@redeliver.test>' }), 1);
    await pollMailbox(runtime, 'queued');
    const queue = new QueueClient(h.azurite.connectionString, 'mail-redelivered');
    const first = (await queue.receiveMessages()).receivedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { id: string; redelivery?: boolean });
    assert.equal(first.length, 1);
    assert.equal(first[0]!.redelivery, undefined);
    const answer = await post('queued', { ids: [first[0]!.id] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const again = (await queue.receiveMessages({ visibilityTimeout: 1 })).receivedMessageItems.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { id: string; redelivery?: boolean });
    assert.deepEqual(again.map((m) => [m.id, m.redelivery]), [[first[0]!.id, true]]);
  });

  it('refused: a caller that is not admin (403), a body naming nothing (400 ids), a profile keeping no copies (400 receive.retainDays); nothing redelivered', async () => {
    h.webhook.reset();
    const forbidden = await post('support', { ids: [ids[0]] }, OTHER_KEY);
    assert.deepEqual([forbidden.status, forbidden.body.code, forbidden.type], [403, 'EFORBIDDEN', 'application/problem+json']);
    const empty = await post('support', {});
    assert.deepEqual([empty.status, empty.body.code, empty.body.field], [400, 'EINPUT', 'ids']);
    const wrong = await post('support', { ids: 'x' });
    assert.deepEqual([wrong.status, wrong.body.field], [400, 'ids']);
    const off = await post('none', { ids: ['x'] });
    assert.deepEqual([off.status, off.body.field], [400, 'receive.retainDays']);
    const unknown = await post('nope', { ids: ['x'] });
    assert.equal(unknown.status, 404);
    assert.equal(h.webhook.received.length, 0);
  });
});
