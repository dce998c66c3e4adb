import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { withAuthRetry } from '../../shared/identity/tokenProvider.js';
import { Pop3Reader } from '../../shared/transports/pop3/pop3Reader.js';
import { Pop3Peer, type Pop3PeerOptions } from '../peers/pop3Peer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom, mailErrorOf } from '../support/mailError.js';
import { CLIENT_ID, largeMessage, MAILBOX, poll, rawMessage, readAll, readerSetup } from './readerHarness.js';

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

  it('the first poll returns every message oldest first, byte for byte, dot-stuffing undone', async (t) => {
    const { pop3, reader, logs, tokensSeen } = await setup(t);
    const sources = [1, 2, 3].map((n) => rawMessage(n));
    const uids = sources.map((s) => pop3.add(s));

    const result = await poll(reader, undefined);

    assert.deepEqual(result.messages.map((m) => m.providerId), uids);
    result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
    assert.deepEqual(result.messages.map((m) => m.size), sources.map((s) => s.length));
    assert.deepEqual(result.finalCursor, { seen: uids });
    assert.equal(result.resynced, false);
    assert.deepEqual(pop3.authAttempts, [{ mechanism: 'XOAUTH2', user: MAILBOX, outcome: 'ok' }]);
    assert.deepEqual(pop3.commands.slice(0, 3), ['CAPA', 'AUTH XOAUTH2', '(sasl payload)'], 'AUTH XOAUTH2 alone, the SASL string on the continuation line');
    assert.equal(pop3.commands.at(-1), 'QUIT');
    assert.deepEqual(pop3.uids(), uids, 'nothing is deleted without afterFetch delete');
    assert.ok(tokensSeen.length > 0 && !logs.some((l) => tokensSeen.some((tok) => l.includes(tok))));
  });

  it('reassembles answers however the server splits them, terminator included', async (t) => {
    const { pop3, reader } = await setup(t, {}, { chunkBytes: 3 });
    const sources = [rawMessage(1), rawMessage(2, '\r\n.\r\n..\r\n')];
    sources.forEach((s) => pop3.add(s));
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 2);
    result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
  });

  it('a second poll with the cursor returns nothing, and messages added between polls come exactly once', async (t) => {
    const { pop3, reader } = await setup(t);
    const firstUids = [pop3.add(rawMessage(1)), pop3.add(rawMessage(2))];
    const first = await poll(reader, undefined);
    assert.equal(first.messages.length, 2);

    const second = await poll(reader, first.finalCursor);
    assert.deepEqual(second.messages, []);
    assert.deepEqual(second.finalCursor, { seen: firstUids });

    const added = [rawMessage(3), rawMessage(4)];
    const addedUids = added.map((s) => pop3.add(s));
    const third = await poll(reader, second.finalCursor);
    assert.deepEqual(third.messages.map((m) => m.providerId), addedUids);
    assert.deepEqual(third.messages.map((m) => m.source.toString('latin1')), added.map((s) => s.toString('latin1')));
    assert.deepEqual((await poll(reader, third.finalCursor)).messages, []);
  });

  it('honours the limit, and each message carries the cursor that resumes right after it', async (t) => {
    const { pop3, reader } = await setup(t);
    const uids = [1, 2, 3, 4, 5].map((n) => pop3.add(rawMessage(n)));

    const first = await poll(reader, undefined, { limit: 2 });
    assert.deepEqual(first.messages.map((m) => m.cursorAfter), [{ seen: uids.slice(0, 1) }, { seen: uids.slice(0, 2) }]);
    assert.deepEqual(first.finalCursor, { seen: uids.slice(0, 2) });

    const resumedFromFirst = await poll(reader, first.messages[0]!.cursorAfter, { limit: 10 });
    assert.deepEqual(resumedFromFirst.messages.map((m) => m.providerId), uids.slice(1));
    const rest = await poll(reader, first.finalCursor, { limit: 10 });
    assert.deepEqual(rest.messages.map((m) => m.providerId), uids.slice(2));
  });

  it('the cursor forgets UIDLs that left the server, so it stays as small as the mailbox', async (t) => {
    const { pop3, reader } = await setup(t);
    const kept = pop3.add(rawMessage(1));
    const result = await poll(reader, { seen: ['gone-1', kept, 'gone-2'] });
    assert.deepEqual(result.messages, []);
    assert.deepEqual(result.finalCursor, { seen: [kept] });
  });

  it('a cursor of another shape (another transport) is a resync, not an error', async (t) => {
    const { pop3, reader } = await setup(t);
    pop3.add(rawMessage(1));
    const result = await poll(reader, { uidValidity: 1, lastUid: 9 });
    assert.equal(result.resynced, true);
    assert.equal(result.messages.length, 1);
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

  it('afterFetch none leaves the mailbox as it was; markRead and move are refused', async (t) => {
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

  it('a token the server refuses is EAUTH naming POP.AccessAsApp', async (t) => {
    const { pop3, reader, logs, tokensSeen } = await setup(t, {}, { grantedClients: ['some-other-app'] });
    const error = await mailErrorFrom(reader.open());
    assert.equal(error.code, 'EAUTH');
    assert.match(error.hint ?? '', /POP\.AccessAsApp/);
    assert.match(error.hint ?? '', /PopEnabled/);
    assert.ok(!tokensSeen.some((tok) => error.message.includes(tok)));
    assert.deepEqual(pop3.authAttempts.map((a) => [a.mechanism, a.outcome]), [['XOAUTH2', 'refused']]);
    assert.ok(!logs.some((l) => tokensSeen.some((tok) => l.includes(tok))));
  });

  it('an expired token is refused once, renewed by withAuthRetry, and the poll goes on', async (t) => {
    const { pop3, reader, deps, tokensSeen } = await setup(t);
    pop3.add(rawMessage(1));
    await poll(reader, undefined);
    entra.revokeAll();
    const before = entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length;

    const session = await withAuthRetry(deps.tokens, () => reader.open());
    await session.close();

    assert.deepEqual(pop3.authAttempts.map((a) => a.outcome), ['ok', 'refused', 'ok']);
    assert.equal(entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length - before, 1);
    assert.notEqual(tokensSeen.at(-1), tokensSeen[0]);
  });

  it('streams a 5 MB message with its bytes intact', async (t) => {
    const { pop3, reader } = await setup(t);
    const big = largeMessage(5 * 1024 * 1024);
    pop3.add(big);
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 1);
    assert.equal(result.messages[0]!.source.length, big.length);
    assert.ok(result.messages[0]!.source.equals(big));
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

  it('a server certificate this host does not trust is ETLS', async (t) => {
    const { reader } = await setup(t, {}, { untrustedCertificate: true });
    const error = await mailErrorFrom(reader.open());
    assert.equal(error.code, 'ETLS');
  });

  it('nobody listening is ECONNECTION', async (t) => {
    const { pop3, profile, deps } = await setup(t);
    await pop3.stop();
    const error = await mailErrorFrom(new Pop3Reader(profile, deps).open());
    assert.equal(error.code, 'ECONNECTION');
  });
});
