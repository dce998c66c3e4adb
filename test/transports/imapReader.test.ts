import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { withAuthRetry } from '../../shared/identity/tokenProvider.js';
import { MailError } from '../../shared/errors.js';
import { ImapReader } from '../../shared/transports/imap/imapReader.js';
import { ImapPeer, type ImapPeerOptions } from '../peers/imapPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { CLIENT_ID, largeMessage, MAILBOX, poll, rawMessage, readAll, readerSetup } from './readerHarness.js';

describe('IMAP reader (imapflow, XOAUTH2) against a loopback IMAP server', () => {
  const entra = new TokenEndpointPeer();
  before(() => entra.start());
  after(() => entra.stop());

  async function setup(t: TestContext, receive: Record<string, unknown> = {}, peerOptions: Partial<ImapPeerOptions> = {}) {
    const imap = await new ImapPeer(entra, { mailbox: MAILBOX, ...peerOptions }).start();
    t.after(() => imap.stop());
    const s = readerSetup(entra, { via: 'imap', ...receive }, { imap: imap.endpoint });
    return { imap, ...s, reader: new ImapReader(s.profile, s.deps) };
  }

  it('the first poll returns every message oldest first, byte for byte, without marking any as read', async (t) => {
    const { imap, reader, logs, tokensSeen } = await setup(t);
    const sources = [1, 2, 3].map((n) => rawMessage(n));
    const uids = sources.map((s, i) => imap.append('INBOX', s, { internalDate: new Date(Date.UTC(2024, 0, 2 + i)) }));
    const validity = imap.uidValidity('INBOX');

    const result = await poll(reader, undefined);

    assert.deepEqual(result.messages.map((m) => m.providerId), uids.map((u) => `${validity}:${u}`));
    result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
    assert.deepEqual(result.messages.map((m) => m.size), sources.map((s) => s.length));
    assert.deepEqual(result.messages.map((m) => m.seen), [false, false, false]);
    assert.deepEqual(result.messages.map((m) => m.receivedAt?.toISOString().slice(0, 10)), ['2024-01-02', '2024-01-03', '2024-01-04']);
    assert.deepEqual(result.finalCursor, { uidValidity: validity, lastUid: uids[2] });
    assert.equal(result.resynced, false);
    assert.deepEqual(imap.messages('INBOX').map((m) => m.flags), [[], [], []], 'reading must not set \\Seen');
    assert.deepEqual(imap.authAttempts, [{ mechanism: 'XOAUTH2', user: MAILBOX, outcome: 'ok' }]);
    const fetches = imap.commands.filter((c) => /FETCH/i.test(c));
    assert.ok(fetches.some((c) => /BODY\.PEEK\[\]/i.test(c)), 'sources are fetched with BODY.PEEK[]');
    assert.ok(!fetches.some((c) => /BODY\[/i.test(c)), 'no plain BODY[] fetch, which would set \\Seen');
    assert.ok(tokensSeen.length > 0 && !logs.some((l) => tokensSeen.some((tok) => l.includes(tok))));
  });

  it('a second poll with the cursor returns nothing, and messages added between polls come exactly once', async (t) => {
    const { imap, reader } = await setup(t);
    imap.append('INBOX', rawMessage(1));
    imap.append('INBOX', rawMessage(2));
    const first = await poll(reader, undefined);
    assert.equal(first.messages.length, 2);

    const second = await poll(reader, first.finalCursor);
    assert.deepEqual(second.messages, []);
    assert.deepEqual(second.finalCursor, first.finalCursor);

    const added = [rawMessage(3), rawMessage(4)];
    added.forEach((s) => imap.append('INBOX', s));
    const third = await poll(reader, second.finalCursor);
    assert.deepEqual(third.messages.map((m) => m.source.toString('latin1')), added.map((s) => s.toString('latin1')));
    assert.deepEqual((await poll(reader, third.finalCursor)).messages, []);
  });

  it('honours the limit, and each message carries the cursor that resumes right after it', async (t) => {
    const { imap, reader } = await setup(t);
    const uids = [1, 2, 3, 4, 5].map((n) => imap.append('INBOX', rawMessage(n)));
    const validity = imap.uidValidity('INBOX');

    const first = await poll(reader, undefined, { limit: 2 });
    assert.deepEqual(first.messages.map((m) => m.cursorAfter), [{ uidValidity: validity, lastUid: uids[0] }, { uidValidity: validity, lastUid: uids[1] }]);
    assert.deepEqual(first.finalCursor, { uidValidity: validity, lastUid: uids[1] });

    const resumedFromFirst = await poll(reader, first.messages[0]!.cursorAfter, { limit: 10 });
    assert.deepEqual(resumedFromFirst.messages.map((m) => m.providerId), uids.slice(1).map((u) => `${validity}:${u}`));
    const rest = await poll(reader, first.finalCursor, { limit: 10 });
    assert.deepEqual(rest.messages.map((m) => m.providerId), uids.slice(2).map((u) => `${validity}:${u}`));
  });

  it('a cursor past the newest message returns nothing, although UID SEARCH N:* still answers the newest', async (t) => {
    const { imap, reader } = await setup(t);
    const uid = imap.append('INBOX', rawMessage(1));
    const result = await poll(reader, { uidValidity: imap.uidValidity('INBOX'), lastUid: uid + 5 });
    assert.deepEqual(result.messages, []);
    assert.ok(imap.commands.some((c) => new RegExp(`UID SEARCH .*${uid + 6}:\\*`, 'i').test(c)));
  });

  it('a changed UIDVALIDITY resynchronises: every message is returned again under the new validity', async (t) => {
    const { imap, reader } = await setup(t);
    [1, 2, 3].forEach((n) => imap.append('INBOX', rawMessage(n)));
    const first = await poll(reader, undefined);
    const validity = imap.changeUidValidity('INBOX');

    const again = await poll(reader, first.finalCursor);
    assert.equal(again.resynced, true);
    assert.deepEqual(again.messages.map((m) => m.providerId), [`${validity}:1`, `${validity}:2`, `${validity}:3`]);
    assert.deepEqual(again.finalCursor, { uidValidity: validity, lastUid: 3 });
    const after = await poll(reader, again.finalCursor);
    assert.equal(after.resynced, false);
    assert.deepEqual(after.messages, []);
  });

  it('a cursor of another shape (another transport) is a resync, not an error', async (t) => {
    const { imap, reader } = await setup(t);
    imap.append('INBOX', rawMessage(1));
    const result = await poll(reader, { seen: ['abc'] });
    assert.equal(result.resynced, true);
    assert.equal(result.messages.length, 1);
  });

  it('with filters.unreadOnly the server is asked for unseen messages only', async (t) => {
    const { imap, reader } = await setup(t, { filters: { unreadOnly: true } });
    imap.append('INBOX', rawMessage(1), { flags: ['\\Seen'] });
    const unread = imap.append('INBOX', rawMessage(2));
    const result = await poll(reader, undefined);
    assert.deepEqual(result.messages.map((m) => m.providerId), [`${imap.uidValidity('INBOX')}:${unread}`]);
  });

  it('reads the configured folder, and "Inbox" means INBOX', async (t) => {
    const { imap, reader } = await setup(t, { folder: 'Tickets' }, { folders: ['Tickets'] });
    imap.append('INBOX', rawMessage(1));
    const ticket = rawMessage(2);
    imap.append('Tickets', ticket);
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 1);
    assert.ok(result.messages[0]!.source.equals(ticket));

    const inbox = await setup(t, { folder: 'Inbox' });
    inbox.imap.append('INBOX', rawMessage(3));
    assert.equal((await poll(inbox.reader, undefined)).messages.length, 1);
  });

  it('afterFetch markRead sets \\Seen on each fetched message', async (t) => {
    const { imap, reader } = await setup(t);
    const uids = [1, 2].map((n) => imap.append('INBOX', rawMessage(n)));
    await poll(reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'markRead' }) });
    assert.deepEqual(uids.map((u) => imap.flags('INBOX', u)), [['\\Seen'], ['\\Seen']]);
  });

  it('afterFetch move lands the message in the target folder, creating the folder if it is missing', async (t) => {
    const { imap, reader } = await setup(t, { afterFetch: 'move', moveTo: 'Processed' });
    const sources = [rawMessage(1), rawMessage(2)];
    sources.forEach((s) => imap.append('INBOX', s));
    assert.equal(imap.hasFolder('Processed'), false);

    await poll(reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'move', moveTo: 'Processed' }) });
    assert.deepEqual(imap.messages('INBOX'), []);
    assert.deepEqual(imap.messages('Processed').map((m) => m.raw.toString('latin1')), sources.map((s) => s.toString('latin1')));
    assert.equal(imap.commands.filter((c) => /\sCREATE\s/i.test(c)).length, 1, 'the folder is created once');
  });

  it('afterFetch delete removes the message from the folder', async (t) => {
    const { imap, reader } = await setup(t);
    [1, 2].forEach((n) => imap.append('INBOX', rawMessage(n)));
    const keep = imap.append('INBOX', rawMessage(3));
    let count = 0;
    await poll(reader, undefined, { limit: 2, afterEach: async (session, m) => { count++; return session.acknowledge(m, { afterFetch: 'delete' }); } });
    assert.equal(count, 2);
    assert.deepEqual(imap.messages('INBOX').map((m) => m.uid), [keep]);
    assert.ok(imap.commands.some((c) => /UID EXPUNGE/i.test(c)), 'only the fetched messages are expunged (UIDPLUS)');
  });

  it('afterFetch none leaves the message as it was', async (t) => {
    const { imap, reader } = await setup(t);
    const uid = imap.append('INBOX', rawMessage(1));
    await poll(reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'none' }) });
    assert.deepEqual(imap.flags('INBOX', uid), []);
  });

  it('a token the server refuses is EAUTH naming IMAP.AccessAsApp, and no password login is tried', async (t) => {
    const { imap, reader, logs, tokensSeen } = await setup(t, {}, { grantedClients: ['some-other-app'] });
    await assert.rejects(() => reader.open(), (error: unknown) => {
      assert.ok(error instanceof MailError);
      assert.equal(error.code, 'EAUTH');
      assert.match(error.hint ?? '', /IMAP\.AccessAsApp/);
      assert.match(error.hint ?? '', /Add-MailboxPermission/);
      assert.match(error.hint ?? '', /ImapEnabled/);
      assert.ok(!tokensSeen.some((tok) => error.message.includes(tok)));
      return true;
    });
    assert.deepEqual(imap.authAttempts.map((a) => [a.mechanism, a.outcome]), [['XOAUTH2', 'refused']]);
    assert.ok(!logs.some((l) => tokensSeen.some((tok) => l.includes(tok))));
  });

  it('an expired token is refused once, renewed by withAuthRetry, and the poll goes on', async (t) => {
    const { imap, reader, deps, tokensSeen } = await setup(t);
    imap.append('INBOX', rawMessage(1));
    await poll(reader, undefined);
    entra.revokeAll();
    const before = entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length;

    const session = await withAuthRetry(deps.tokens, () => reader.open());
    await session.close();

    assert.deepEqual(imap.authAttempts.map((a) => a.outcome), ['ok', 'refused', 'ok']);
    assert.equal(entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length - before, 1);
    assert.notEqual(tokensSeen.at(-1), tokensSeen[0]);
  });

  it('streams a 5 MB message with its bytes intact', async (t) => {
    const { imap, reader } = await setup(t);
    const big = largeMessage(5 * 1024 * 1024);
    imap.append('INBOX', big);
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 1);
    assert.equal(result.messages[0]!.source.length, big.length);
    assert.ok(result.messages[0]!.source.equals(big));
    assert.ok(imap.commands.filter((c) => /BODY\.PEEK\[\]<\d+\.\d+>/i.test(c)).length > 1, 'fetched in partial chunks, not in one piece');
  });

  it('small messages come whole in one UID FETCH, byte for byte, and each source opens again (as dead-lettering does)', async (t) => {
    const { imap, reader } = await setup(t);
    const sources = Array.from({ length: 30 }, (_, i) => rawMessage(i + 1));
    sources.forEach((s) => imap.append('INBOX', s));

    const result = await poll(reader, undefined);

    assert.equal(result.messages.length, 30);
    result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
    for (const m of result.messages) assert.ok((await readAll(await m.fetched.openSource())).equals(m.source), 'a second open gives the same bytes');
    const sourceFetches = imap.commands.filter((c) => /FETCH/i.test(c) && /BODY\.PEEK\[\]/i.test(c));
    assert.equal(sourceFetches.length, 1, 'one round trip for all thirty sources');
    assert.match(sourceFetches[0]!, /UID FETCH 1:30 /i, 'consecutive UIDs travel as one range');
    assert.deepEqual(imap.messages('INBOX').map((m) => m.flags), sources.map(() => []), 'reading must not set \\Seen');
  });

  it('a large message between small ones is streamed on its own; order and bytes of all are kept', async (t) => {
    const { imap, reader } = await setup(t);
    const sources = [rawMessage(1), rawMessage(2), largeMessage(2 * 1024 * 1024), rawMessage(4)];
    sources.forEach((s) => imap.append('INBOX', s));

    const result = await poll(reader, undefined);

    assert.equal(result.messages.length, 4);
    result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
    const fetches = imap.commands.filter((c) => /FETCH/i.test(c));
    assert.equal(fetches.filter((c) => /BODY\.PEEK\[\](?!<)/i.test(c)).length, 2, 'the small ones before and after it in two bulk fetches');
    assert.ok(fetches.filter((c) => /UID FETCH 3 .*BODY\.PEEK\[\]<\d+\.\d+>/i.test(c)).length > 1, 'the large one in partial chunks');
  });

  it('a folder that does not exist is EMAILBOX', async (t) => {
    const { reader } = await setup(t, { folder: 'Nope' });
    await assert.rejects(() => reader.open(), { code: 'EMAILBOX' });
  });

  it('a server certificate this host does not trust is ETLS', async (t) => {
    const { reader } = await setup(t, {}, { untrustedCertificate: true });
    await assert.rejects(() => reader.open(), { code: 'ETLS' });
  });

  it('nobody listening is ECONNECTION', async (t) => {
    const { imap, profile, deps } = await setup(t);
    await imap.stop();
    await assert.rejects(() => new ImapReader(profile, deps).open(), { code: 'ECONNECTION' });
  });
});
