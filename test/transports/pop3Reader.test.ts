import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { Pop3Reader } from '../../shared/transports/pop3/pop3Reader.js';
import { Pop3Peer, type Pop3PeerOptions } from '../peers/pop3Peer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom, mailErrorOf } from '../support/mailError.js';
import { largeMessage, MAILBOX, poll, rawMessage, readAll, readerSetup } from './readerHarness.js';

// What every reader does (order, bytes, cursors, resync, afterFetch none and delete, EAUTH,
// renewal, ETLS, ECONNECTION) is the MailboxReader contract's: pop3.contract.test.ts. Here: POP3's own.
describe('POP3 reader (AUTH XOAUTH2) against a loopback POP3 server', () => {
  const entra = new TokenEndpointPeer();
  before(() => entra.start());
  after(() => entra.stop());

  async function setup(t: TestContext, receive: Record<string, unknown> = {}, peerOptions: Partial<Pop3PeerOptions> = {}) {
    const pop3 = await new Pop3Peer(entra, { mailbox: MAILBOX, ...peerOptions }).start();
    t.after(() => pop3.stop());
    const s = readerSetup(entra, { via: 'pop3', ...receive }, { pop3: pop3.endpoint });
    return { pop3, ...s, reader: new Pop3Reader(s.profile, s.deps) };
  }

  it('logs in with AUTH XOAUTH2 alone, the SASL string on the continuation line, ends with QUIT, and the cursor is the UIDLs seen', async (t) => {
    const { pop3, reader } = await setup(t);
    const uids = [1, 2, 3].map((n) => pop3.add(rawMessage(n)));
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 3);
    assert.deepEqual(result.finalCursor, { seen: uids });
    assert.deepEqual(pop3.authAttempts, [{ mechanism: 'XOAUTH2', user: MAILBOX, outcome: 'ok' }]);
    assert.deepEqual(pop3.commands.slice(0, 3), ['CAPA', 'AUTH XOAUTH2', '(sasl payload)'], 'AUTH XOAUTH2 alone, the SASL string on the continuation line');
    assert.equal(pop3.commands.at(-1), 'QUIT');
  });

  it('reassembles answers however the server splits them, terminator included', async (t) => {
    const { pop3, reader } = await setup(t, {}, { chunkBytes: 3 });
    const sources = [rawMessage(1), rawMessage(2, '\r\n.\r\n..\r\n')];
    sources.forEach((s) => pop3.add(s));
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 2);
    result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
  });

  it('the cursor forgets UIDLs that left the server, so it stays as small as the mailbox', async (t) => {
    const { pop3, reader } = await setup(t);
    const kept = pop3.add(rawMessage(1));
    const result = await poll(reader, { seen: ['gone-1', kept, 'gone-2'] });
    assert.deepEqual(result.messages, []);
    assert.deepEqual(result.finalCursor, { seen: [kept] });
  });

  it('afterFetch delete removes the messages once the session QUITs, and not before', async (t) => {
    const { pop3, reader } = await setup(t);
    const uids = [1, 2, 3].map((n) => pop3.add(rawMessage(n)));
    const session = await reader.open();
    for await (const m of session.messages(undefined, { limit: 2 })) {
      await readAll(await m.openSource());
      await session.acknowledge(m, { afterFetch: 'delete' });
    }
    assert.deepEqual(pop3.uids(), uids, 'DELE only marks');
    await session.close();
    assert.deepEqual(pop3.uids(), uids.slice(2));
  });

  it('a message marked for deletion is left out of the cursors, so when QUIT fails and the DELE is not committed the next poll meets it again', async (t) => {
    const { pop3, reader } = await setup(t);
    const uids = [1, 2, 3].map((n) => pop3.add(rawMessage(n)));
    const session = await reader.open();
    const cursors: unknown[] = [];
    for await (const m of session.messages(undefined, { limit: 10 })) {
      await readAll(await m.openSource());
      cursors.push(await session.acknowledge(m, { afterFetch: m.providerId === uids[1] ? 'none' : 'delete' }));
    }
    assert.deepEqual(cursors, [{ seen: [] }, { seen: [uids[1]] }, { seen: [uids[1]] }]);
    const final = session.finalCursor();
    assert.deepEqual(final, { seen: [uids[1]] });
    pop3.dropNextQuit();
    const failure = await mailErrorFrom(session.close());
    assert.equal(failure.code, 'ECONNECTION');
    assert.deepEqual(pop3.uids(), uids, 'the deletions were not committed');

    const again = await poll(reader, final, { afterEach: (s, m) => s.acknowledge(m, { afterFetch: 'delete' }) });
    assert.deepEqual(again.messages.map((m) => m.providerId), [uids[0], uids[2]]);
    assert.deepEqual(pop3.uids(), [uids[1]]);
  });

  it('afterFetch markRead and move are refused as ECONFIG (POP3 has no flags and no folders), and the message stays', async (t) => {
    const { pop3, reader } = await setup(t);
    const uid = pop3.add(rawMessage(1));
    const errors: string[] = [];
    await poll(reader, undefined, {
      afterEach: async (session, m) => {
        for (const action of ['markRead', 'move'] as const) errors.push((await mailErrorFrom(session.acknowledge(m, { afterFetch: action }))).code);
        return session.acknowledge(m, { afterFetch: 'none' });
      },
    });
    assert.deepEqual(errors, ['ECONFIG', 'ECONFIG']);
    assert.deepEqual(pop3.uids(), [uid]);
  });

  it('a POP3 profile asking for markRead, move, another folder or unreadOnly is refused at start-up, naming the field', () => {
    const base = { mailbox: MAILBOX, tenantId: 't', clientId: 'c', auth: { type: 'clientSecret', secret: 's' } };
    const deliver = { queue: { name: 'mail-incoming' } };
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ afterFetch: 'markRead' }, 'receive.afterFetch'],
      [{ afterFetch: 'move', moveTo: 'Done' }, 'receive.afterFetch'],
      [{ folder: 'Archive' }, 'receive.folder'],
      [{ filters: { unreadOnly: true } }, 'receive.filters.unreadOnly'],
    ];
    for (const [receive, field] of cases) {
      const error = mailErrorOf(() => parseProfiles({ profiles: { p: { ...base, receive: { via: 'pop3', deliver, ...receive } } } }, 'test'));
      assert.equal(error.code, 'ECONFIG');
      assert.equal(error.field, field);
    }
    assert.ok(parseProfiles({ profiles: { p: { ...base, receive: { via: 'pop3', deliver, folder: 'Inbox', afterFetch: 'delete' } } } }, 'test'));
  });

  it('a source stream abandoned midway leaves the session usable', async (t) => {
    const { pop3, reader } = await setup(t);
    pop3.add(largeMessage(1024 * 1024));
    const second = rawMessage(2);
    pop3.add(second);
    const session = await reader.open();
    const got: Buffer[] = [];
    let first = true;
    for await (const m of session.messages(undefined, { limit: 10 })) {
      const stream = await m.openSource();
      if (first) {
        first = false;
        await new Promise<void>((resolve) => stream.once('data', () => resolve()));
        (stream as import('node:stream').Readable).destroy();
        continue;
      }
      got.push(await readAll(stream));
    }
    await session.close();
    assert.equal(got.length, 1);
    assert.ok(got[0]!.equals(second));
  });

});
