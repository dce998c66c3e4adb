import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';
import { HOOK_SECRET, ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';

const plain = (n: number, extra: Parameters<typeof composeEml>[0] = {}) =>
  composeEml({ from: `Customer ${n} <customer${n}@fabrikam.com>`, to: 'support@contoso.com', subject: `Ticket ${n}`, text: `Body of ticket ${n}`, messageId: `<ticket-${n}@fabrikam.com>`, ...extra });

describe('polling the file inbox of a profile and delivering to a signed webhook', () => {
  const h = new ReceiveHarness();
  before(() => h.start());
  after(() => h.stop());
  beforeEach(() => h.webhook.reset());

  it('delivers each dropped .eml once, oldest first, signed, with the stable id in X-Mail-Id and the profile tags', async () => {
    const inbox = h.folder('inbox');
    const processed = h.folder('processed');
    for (const n of [2, 1, 3]) dropEml(inbox, `msg-${n}.eml`, await plain(n), n);
    const runtime = h.runtime({ desk: h.fileProfile(inbox, { afterFetch: 'move', moveTo: processed }) });

    const result = await pollMailbox(runtime, 'desk');
    assert.equal(result.status, 'completed');
    assert.equal(result.delivered, 3);
    assert.equal(h.webhook.received.length, 3);
    for (const hook of h.webhook.received) {
      assert.ok(WebhookReceiverPeer.verify(hook, HOOK_SECRET), 'the signature verifies with the shared secret');
      assert.ok(!WebhookReceiverPeer.verify(hook, 'another-secret'));
      const body = JSON.parse(hook.body) as DeliveredMessage;
      assert.equal(hook.headers['x-mail-id'], body.id);
      assert.match(body.id, /^[0-9a-f]{64}$/);
      assert.ok(Math.abs(Number(hook.headers['x-mail-timestamp']) - Date.now() / 1000) < 60);
      assert.deepEqual(body.tags, { category: 'Network' });
      assert.equal(body.profile, 'desk');
      assert.equal(body.provider.via, 'file');
    }
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 1', 'Ticket 2', 'Ticket 3']);
    assert.deepEqual(readdirSync(inbox), [], 'afterFetch move empties the inbox');
    assert.deepEqual(readdirSync(processed).sort(), ['msg-1.eml', 'msg-2.eml', 'msg-3.eml']);
  });

  it('a second poll delivers nothing new, and messages arriving between polls are delivered once', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'a.eml', await plain(11), 1);
    dropEml(inbox, 'b.eml', await plain(12), 2);
    const runtime = h.runtime({ keep: h.fileProfile(inbox, { afterFetch: 'none' }) });

    assert.equal((await pollMailbox(runtime, 'keep')).delivered, 2);
    const second = await pollMailbox(runtime, 'keep');
    assert.deepEqual([second.status, second.delivered, second.duplicates], ['completed', 0, 0]);
    dropEml(inbox, 'c.eml', await plain(13), 3);
    dropEml(inbox, 'd.eml', await plain(14), 4);
    const third = await pollMailbox(runtime, 'keep');
    assert.equal(third.delivered, 2);
    assert.deepEqual(third.cursor, { seen: ['a.eml', 'b.eml', 'c.eml', 'd.eml'] });
    assert.equal((await pollMailbox(runtime, 'keep')).delivered, 0);
    const subjects = h.webhook.accepted<DeliveredMessage>().map((m) => m.subject);
    assert.deepEqual(subjects, ['Ticket 11', 'Ticket 12', 'Ticket 13', 'Ticket 14']);
    assert.deepEqual(readdirSync(inbox).sort(), ['a.eml', 'b.eml', 'c.eml', 'd.eml'], 'afterFetch none leaves the files');
  });

  it('afterFetch delete removes each delivered file; markRead leaves files (they have no read flag) and delivers them once', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'x.eml', await plain(21), 1);
    const deleting = h.runtime({ del: h.fileProfile(inbox, { afterFetch: 'delete' }) });
    assert.equal((await pollMailbox(deleting, 'del')).delivered, 1);
    assert.deepEqual(readdirSync(inbox), []);

    const other = h.folder('inbox');
    dropEml(other, 'y.eml', await plain(22), 1);
    const marking = h.runtime({ mark: h.fileProfile(other, { afterFetch: 'markRead' }) });
    assert.equal((await pollMailbox(marking, 'mark')).delivered, 1);
    assert.equal((await pollMailbox(marking, 'mark')).delivered, 0);
    assert.deepEqual(readdirSync(other), ['y.eml']);
  });

  it('batchSize bounds one poll; the rest come with the next', async () => {
    const inbox = h.folder('inbox');
    for (let n = 1; n <= 5; n++) dropEml(inbox, `m${n}.eml`, await plain(30 + n), n);
    const runtime = h.runtime({ small: h.fileProfile(inbox, { batchSize: 2 }) });
    assert.deepEqual([(await pollMailbox(runtime, 'small')).delivered, (await pollMailbox(runtime, 'small')).delivered, (await pollMailbox(runtime, 'small')).delivered, (await pollMailbox(runtime, 'small')).delivered], [2, 2, 1, 0]);
  });

  it('an unparseable file is dead-lettered with its raw source, the poll goes on, and it is not retried', async () => {
    const inbox = h.folder('inbox');
    const garbage = Buffer.from('this is not an e-mail message at all\r\n\r\njust text\r\n');
    dropEml(inbox, '1-garbage.eml', garbage, 1);
    dropEml(inbox, '2-good.eml', await plain(41), 2);
    const runtime = h.runtime({ parse: h.fileProfile(inbox) });

    const first = await pollMailbox(runtime, 'parse');
    assert.deepEqual([first.status, first.deadLettered, first.delivered], ['completed', 1, 1]);
    const container = await h.state.account.container(STATE_NAMES.deadLetter);
    const names: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'parse/' })) names.push(blob.name);
    const json = names.find((n) => n.endsWith('.json'));
    const eml = names.find((n) => n.endsWith('.eml'));
    assert.ok(json && eml, `dead-letter blobs: ${names.join(', ')}`);
    const record = JSON.parse((await container.getBlockBlobClient(json).downloadToBuffer()).toString()) as { error: { code: string }; providerId: string };
    assert.equal(record.error.code, 'EPARSE');
    assert.equal(record.providerId, '1-garbage.eml');
    assert.deepEqual(await container.getBlockBlobClient(eml).downloadToBuffer(), garbage);

    const second = await pollMailbox(runtime, 'parse');
    assert.deepEqual([second.deadLettered, second.delivered], [0, 0]);
    assert.equal(existsSync(path.join(inbox, '1-garbage.eml')), true, 'the original stays for a person to look at');
  });
});
