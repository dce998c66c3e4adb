import { after, before, beforeEach, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { Pop3Peer } from '../peers/pop3Peer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';
import { HOOK_SECRET, ReceiveHarness, composeEml } from '../support/receiveHarness.js';

const MAILBOX = 'helpdesk@contoso.com';
const TENANT = 'contoso-tenant';
const CLIENT_ID = 'poll-app';
const SECRET = 'poll-app-secret-1';

const ticket = (n: number, extra: Parameters<typeof composeEml>[0] = {}) =>
  composeEml({ from: `user${n}@fabrikam.com`, to: MAILBOX, subject: `Request ${n}`, text: `Please help with ${n}`, messageId: `<request-${n}@fabrikam.com>`, ...extra });

describe('polling real mail protocols (IMAP and POP3 with XOAUTH2, Graph delta) into a signed webhook', () => {
  const h = new ReceiveHarness();
  const entra = new TokenEndpointPeer();
  let count = 0;
  before(async () => {
    await Promise.all([h.start(), entra.start()]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
  });
  after(() => Promise.all([h.stop(), entra.stop()]));
  beforeEach(() => h.webhook.reset());

  function runtimeFor(receive: Record<string, unknown>, endpoints: Record<string, string>) {
    const name = `server${++count}`;
    const profile = {
      mailbox: MAILBOX,
      tenantId: TENANT,
      clientId: CLIENT_ID,
      auth: { type: 'clientSecret', secret: 'poll-app-secret' },
      receive: { deliver: { webhook: { url: h.webhook.url, signingSecret: 'hook-signing-key' } }, tags: { group: 'L1' }, ...receive },
      endpoints: { authority: entra.url, ...endpoints },
    };
    return { name, runtime: h.runtime({ [name]: profile }, { POLL_APP_SECRET: SECRET }) };
  }

  async function imapPeer(t: TestContext, folders: string[] = []) {
    const imap = await new ImapPeer(entra, { mailbox: MAILBOX, folders }).start();
    t.after(() => imap.stop());
    return imap;
  }

  it('IMAP: new mail is delivered once and marked read; a changed UIDVALIDITY resyncs without delivering anything twice', async (t) => {
    const imap = await imapPeer(t);
    for (const n of [1, 2, 3]) imap.append('INBOX', await ticket(n));
    const { name, runtime } = runtimeFor({ via: 'imap', afterFetch: 'markRead' }, { imap: imap.endpoint });

    const first = await pollMailbox(runtime, name);
    assert.deepEqual([first.status, first.delivered], ['completed', 3], JSON.stringify(first.error));
    assert.deepEqual(first.cursor, { uidValidity: imap.uidValidity('INBOX'), lastUid: imap.messages('INBOX').at(-1)!.uid });
    assert.ok(imap.messages('INBOX').every((m) => m.flags.includes('\\Seen')));
    const bodies = h.webhook.accepted<DeliveredMessage>();
    assert.deepEqual(bodies.map((b) => b.subject), ['Request 1', 'Request 2', 'Request 3']);
    assert.ok(bodies.every((b) => b.provider.via === 'imap' && b.tags.group === 'L1' && b.mailbox === MAILBOX));
    assert.ok(h.webhook.received.every((r) => WebhookReceiverPeer.verify(r, HOOK_SECRET)));

    assert.equal((await pollMailbox(runtime, name)).delivered, 0);
    imap.append('INBOX', await ticket(4));
    assert.equal((await pollMailbox(runtime, name)).delivered, 1);

    imap.changeUidValidity('INBOX');
    const resync = await pollMailbox(runtime, name);
    assert.deepEqual([resync.status, resync.resynced, resync.delivered, resync.duplicates], ['completed', true, 0, 4]);
    assert.equal(h.webhook.received.length, 4, 'nothing was delivered twice');
  });

  it('IMAP: unreadOnly passes over mail that was already read', async (t) => {
    const imap = await imapPeer(t);
    imap.append('INBOX', await ticket(11), { flags: ['\\Seen'] });
    imap.append('INBOX', await ticket(12));
    const { name, runtime } = runtimeFor({ via: 'imap', filters: { unreadOnly: true } }, { imap: imap.endpoint });
    const result = await pollMailbox(runtime, name);
    assert.equal(result.delivered, 1);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Request 12']);
  });

  it('IMAP: afterFetch move puts delivered mail into moveTo; delete removes it', async (t) => {
    const imap = await imapPeer(t, ['Processed']);
    imap.append('INBOX', await ticket(21));
    const moving = runtimeFor({ via: 'imap', afterFetch: 'move', moveTo: 'Processed' }, { imap: imap.endpoint });
    assert.equal((await pollMailbox(moving.runtime, moving.name)).delivered, 1);
    assert.equal(imap.messages('INBOX').length, 0);
    assert.equal(imap.messages('Processed').length, 1);

    imap.append('INBOX', await ticket(22));
    const deleting = runtimeFor({ via: 'imap', afterFetch: 'delete' }, { imap: imap.endpoint });
    assert.equal((await pollMailbox(deleting.runtime, deleting.name)).delivered, 1);
    assert.equal(imap.messages('INBOX').length, 0);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Request 21', 'Request 22']);
  });

  it('IMAP: a refused token stops the poll with EAUTH and keeps the cursor', async (t) => {
    const imap = await new ImapPeer(entra, { mailbox: MAILBOX, grantedClients: ['some-other-app'] }).start();
    t.after(() => imap.stop());
    imap.append('INBOX', await ticket(31));
    const { name, runtime } = runtimeFor({ via: 'imap' }, { imap: imap.endpoint });
    const result = await pollMailbox(runtime, name);
    assert.equal(result.status, 'failed');
    assert.equal(result.error?.code, 'EAUTH');
    assert.equal(result.cursor, undefined);
    assert.equal(h.webhook.received.length, 0);
    assert.ok(!h.logs.some((l) => l.includes(SECRET)), 'the secret never reaches a log line');
  });

  it('IMAP: the server closing the connection in the middle of a window keeps the cursor at the last acknowledged message, and the next poll delivers the rest once', async (t) => {
    const imap = await imapPeer(t);
    // A message over 1 MiB is streamed in partial fetches after the small ones came in bulk:
    // the connection goes down half-way through streaming it.
    const large = await ticket(44, { attachments: [{ filename: 'dump.bin', content: Buffer.alloc(1536 * 1024, 7) }] });
    for (const n of [41, 42, 43]) imap.append('INBOX', await ticket(n));
    imap.append('INBOX', large);
    for (const n of [45, 46]) imap.append('INBOX', await ticket(n));
    const uids = imap.messages('INBOX').map((m) => m.uid);
    const { name, runtime } = runtimeFor({ via: 'imap', afterFetch: 'none' }, { imap: imap.endpoint });
    let partials = 0;
    imap.dropConnectionOn((command) => /\bUID FETCH\b.*BODY\.PEEK\[\]<\d+\.\d+>/i.test(command) && ++partials === 2);

    const broken = await pollMailbox(runtime, name);
    assert.equal(broken.status, 'failed');
    assert.equal(broken.error?.code, 'ECONNECTION', JSON.stringify(broken.error));
    assert.equal(partials, 2, 'the connection went down while the large message was streamed');
    assert.equal(broken.delivered, 3);
    assert.deepEqual(broken.cursor, { uidValidity: imap.uidValidity('INBOX'), lastUid: uids[2] });
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Request 41', 'Request 42', 'Request 43']);

    const next = await pollMailbox(runtime, name);
    assert.deepEqual([next.status, next.delivered, next.duplicates], ['completed', 3, 0], JSON.stringify(next.error));
    assert.deepEqual(next.cursor, { uidValidity: imap.uidValidity('INBOX'), lastUid: uids[5] });
    const delivered = h.webhook.accepted<DeliveredMessage>();
    assert.deepEqual(delivered.map((m) => m.subject), ['Request 41', 'Request 42', 'Request 43', 'Request 44', 'Request 45', 'Request 46']);
    assert.equal(new Set(delivered.map((m) => m.id)).size, 6, 'nothing was delivered twice');
    assert.equal(delivered[3]!.attachments[0]?.size, 1536 * 1024, 'the large message arrived whole');
  });

  it('Graph: new mail is delivered once and marked read; an expired delta token resyncs without delivering anything twice', async (t) => {
    const graph = await new GraphPeer(entra).start();
    t.after(() => graph.stop());
    graph.addMailbox(MAILBOX);
    for (const n of [61, 62]) graph.mail.addMessage(MAILBOX, 'inbox', await ticket(n), { receivedAt: new Date(Date.UTC(2024, 2, 1, 9, n)) });
    const { name, runtime } = runtimeFor({ via: 'graph', afterFetch: 'markRead' }, { graph: graph.url });

    const first = await pollMailbox(runtime, name);
    assert.deepEqual([first.status, first.delivered], ['completed', 2], JSON.stringify(first.error));
    assert.match(String((first.cursor as { deltaLink?: string }).deltaLink), /\$deltatoken=/);
    assert.ok(graph.mail.messagesIn(MAILBOX, 'inbox').every((m) => m.isRead));
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => `${m.provider.via}:${m.subject}`), ['graph:Request 61', 'graph:Request 62']);

    graph.mail.addMessage(MAILBOX, 'inbox', await ticket(63), { receivedAt: new Date(Date.UTC(2024, 2, 1, 10, 0)) });
    assert.equal((await pollMailbox(runtime, name)).delivered, 1);

    graph.mail.expireDeltaTokens();
    const resync = await pollMailbox(runtime, name);
    assert.deepEqual([resync.status, resync.resynced, resync.delivered, resync.duplicates], ['completed', true, 0, 3], JSON.stringify(resync.error));
    assert.equal(h.webhook.received.length, 3, 'nothing was delivered twice');
  });

  it('Graph: a poll that fails in the middle of a delta round keeps the old cursor; the next poll reads the round again and delivers only the rest', async (t) => {
    const graph = await new GraphPeer(entra).start();
    t.after(() => graph.stop());
    graph.addMailbox(MAILBOX);
    // More than one poll window (50), so the failure comes after a window was delivered and recorded.
    for (let n = 0; n < 60; n++) graph.mail.addMessage(MAILBOX, 'inbox', await ticket(100 + n), { receivedAt: new Date(Date.UTC(2024, 2, 2, 9, 0, n)) });
    const { name, runtime } = runtimeFor({ via: 'graph' }, { graph: graph.url });
    h.webhook.answer(...Array.from({ length: 55 }, () => ({ status: 200 })), { status: 503 }, { status: 503 }, { status: 503 }, { status: 503 });

    const broken = await pollMailbox(runtime, name);
    assert.deepEqual([broken.status, broken.delivered, broken.cursor], ['failed', 55, undefined], JSON.stringify(broken.error));

    const next = await pollMailbox(runtime, name);
    assert.deepEqual([next.status, next.duplicates, next.delivered], ['completed', 55, 5], JSON.stringify(next.error));
    assert.match(String((next.cursor as { deltaLink?: string }).deltaLink), /\$deltatoken=/);
    const delivered = h.webhook.accepted<DeliveredMessage>().map((m) => m.subject);
    assert.deepEqual(delivered, Array.from({ length: 60 }, (_, n) => `Request ${100 + n}`), 'each once, in order');
  });

  it('POP3: new mail is delivered once; afterFetch delete removes it from the server', async (t) => {
    const pop3 = await new Pop3Peer(entra, { mailbox: MAILBOX }).start();
    t.after(() => pop3.stop());
    pop3.add(await ticket(41));
    pop3.add(await ticket(42));
    const { name, runtime } = runtimeFor({ via: 'pop3', afterFetch: 'delete' }, { pop3: pop3.endpoint });
    const first = await pollMailbox(runtime, name);
    assert.deepEqual([first.status, first.delivered], ['completed', 2], JSON.stringify(first.error));
    assert.deepEqual(pop3.uids(), []);
    pop3.add(await ticket(43));
    assert.equal((await pollMailbox(runtime, name)).delivered, 1);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => `${m.provider.via}:${m.subject}`), ['pop3:Request 41', 'pop3:Request 42', 'pop3:Request 43']);
  });

  it('POP3: when QUIT fails after the DELEs, the poll reports it and the next poll deletes those messages, delivering nothing twice', async (t) => {
    const pop3 = await new Pop3Peer(entra, { mailbox: MAILBOX }).start();
    t.after(() => pop3.stop());
    const uids = [pop3.add(await ticket(61)), pop3.add(await ticket(62))];
    const { name, runtime } = runtimeFor({ via: 'pop3', afterFetch: 'delete' }, { pop3: pop3.endpoint });
    pop3.dropNextQuit();
    const first = await pollMailbox(runtime, name);
    assert.deepEqual([first.status, first.delivered], ['completed', 2], JSON.stringify(first.error));
    assert.deepEqual(first.cleanupErrors?.map((e) => e.code), ['ECONNECTION']);
    assert.deepEqual(pop3.uids(), uids, 'QUIT did not commit the deletions');

    const second = await pollMailbox(runtime, name);
    assert.deepEqual([second.status, second.delivered, second.duplicates, second.cleanupErrors], ['completed', 0, 2, undefined]);
    assert.deepEqual(pop3.uids(), []);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Request 61', 'Request 62']);
  });

  it('POP3 without delete: the UIDL cursor keeps a second poll from delivering anything again', async (t) => {
    const pop3 = await new Pop3Peer(entra, { mailbox: MAILBOX }).start();
    t.after(() => pop3.stop());
    const uids = [pop3.add(await ticket(51)), pop3.add(await ticket(52))];
    const { name, runtime } = runtimeFor({ via: 'pop3' }, { pop3: pop3.endpoint });
    const first = await pollMailbox(runtime, name);
    assert.equal(first.delivered, 2);
    assert.deepEqual(first.cursor, { seen: uids });
    const second = await pollMailbox(runtime, name);
    assert.deepEqual([second.delivered, second.duplicates], [0, 0]);
    assert.deepEqual(pop3.uids(), uids);
  });
});
