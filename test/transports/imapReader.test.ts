import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { ImapReader } from '../../shared/transports/imap/imapReader.js';
import { ImapPeer, type ImapPeerOptions } from '../peers/imapPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { largeMessage, MAILBOX, poll, rawMessage, readAll, readerSetup } from './readerHarness.js';

// What every reader does (order, bytes, cursors, resync, afterFetch, EAUTH, renewal, ETLS,
// ECONNECTION, EMAILBOX) is the MailboxReader contract's: imap.contract.test.ts. Here: IMAP's own.
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

  it("sources are fetched with BODY.PEEK[] (never BODY[], which sets \\Seen) after one XOAUTH2 login, and the cursor is the folder's UIDVALIDITY and last UID", async (t) => {
    const { imap, reader } = await setup(t);
    const uids = [1, 2, 3].map((n) => imap.append('INBOX', rawMessage(n)));
    const result = await poll(reader, undefined);
    assert.equal(result.messages.length, 3);
    assert.deepEqual(result.finalCursor, { uidValidity: imap.uidValidity('INBOX'), lastUid: uids[2] });
    assert.deepEqual(imap.authAttempts, [{ mechanism: 'XOAUTH2', user: MAILBOX, outcome: 'ok' }]);
    const fetches = imap.commands.filter((c) => /FETCH/i.test(c));
    assert.ok(fetches.some((c) => /BODY\.PEEK\[\]/i.test(c)), 'sources are fetched with BODY.PEEK[]');
    assert.ok(!fetches.some((c) => /BODY\[/i.test(c)), 'no plain BODY[] fetch, which would set \\Seen');
  });

  it('a cursor past the newest message returns nothing, although UID SEARCH N:* still answers the newest', async (t) => {
    const { imap, reader } = await setup(t);
    const uid = imap.append('INBOX', rawMessage(1));
    const result = await poll(reader, { uidValidity: imap.uidValidity('INBOX'), lastUid: uid + 5 });
    assert.deepEqual(result.messages, []);
    assert.ok(imap.commands.some((c) => new RegExp(`UID SEARCH .*${uid + 6}:\\*`, 'i').test(c)));
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

  it('a missing move target is created with one CREATE for the whole poll', async (t) => {
    const { imap, reader } = await setup(t, { afterFetch: 'move', moveTo: 'Processed' });
    [1, 2, 3].forEach((n) => imap.append('INBOX', rawMessage(n)));
    await poll(reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'move', moveTo: 'Processed' }) });
    assert.equal(imap.messages('Processed').length, 3);
    assert.equal(imap.commands.filter((c) => /\sCREATE\s/i.test(c)).length, 1, 'the folder is created once');
  });

  it('afterFetch delete expunges only the fetched UIDs, with UID EXPUNGE (UIDPLUS)', async (t) => {
    const { imap, reader } = await setup(t);
    const uids = [1, 2, 3].map((n) => imap.append('INBOX', rawMessage(n)));
    await poll(reader, undefined, { limit: 2, afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'delete' }) });
    assert.deepEqual(imap.messages('INBOX').map((m) => m.uid), [uids[2]]);
    assert.ok(imap.commands.some((c) => /UID EXPUNGE/i.test(c)), 'UID EXPUNGE, not EXPUNGE, which would also remove messages another client flagged \\Deleted');
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

});
