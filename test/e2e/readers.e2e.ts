import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MailboxReader } from '../../shared/transports/types.js';
import { ImapReader } from '../../shared/transports/imap/imapReader.js';
import { Pop3Reader } from '../../shared/transports/pop3/pop3Reader.js';
import { TokenEndpointPeer, tokenMailboxes } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';
import { CLIENT_ID, MAILBOX, poll, rawMessage, readerSetup } from '../transports/readerHarness.js';
import { MailServers } from './mailServers.js';

const readers = {
  imap: (entra: TokenEndpointPeer, servers: MailServers, receive: Record<string, unknown> = {}): MailboxReader => {
    const s = readerSetup(entra, { via: 'imap', ...receive }, { imap: servers.imap });
    return new ImapReader(s.profile, s.deps);
  },
  pop3: (entra: TokenEndpointPeer, servers: MailServers, receive: Record<string, unknown> = {}): MailboxReader => {
    const s = readerSetup(entra, { via: 'pop3', ...receive }, { pop3: servers.pop3 });
    return new Pop3Reader(s.profile, s.deps);
  },
};

describe('mailbox readers against the real Dovecot (TLS, XOAUTH2 tokens from @azure/identity, checked by RFC 7662 introspection)', { timeout: 300_000 }, () => {
  const entra = new TokenEndpointPeer();
  let servers: MailServers;

  before(async () => {
    await entra.start();
    tokenMailboxes.set(CLIENT_ID, MAILBOX);
    servers = await new MailServers({ introspectionUrl: entra.introspectionUrl, domains: ['contoso.com'] }).start();
  });
  after(async () => {
    tokenMailboxes.delete(CLIENT_ID);
    await servers?.stop();
    await entra.stop();
  });
  beforeEach(() => servers.empty(MAILBOX));

  for (const via of ['imap', 'pop3'] as const) {
    const reader = (receive?: Record<string, unknown>) => readers[via](entra, servers, receive);

    it(`${via}: the first read returns every message oldest first with identical bytes; a second read returns nothing`, async () => {
      const sources = [1, 2, 3].map((n) => rawMessage(n));
      for (const s of sources) await servers.deliver(MAILBOX, s);

      const first = await poll(reader(), undefined);
      assert.equal(first.messages.length, 3);
      first.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1}: ${JSON.stringify(m.source.toString('latin1'))}`));
      assert.equal(first.resynced, false);

      const second = await poll(reader(), first.finalCursor);
      assert.deepEqual(second.messages, []);
      assert.deepEqual(second.finalCursor, first.finalCursor);
      const stored = await servers.messages(MAILBOX);
      assert.equal(stored.length, 3, 'reading alone removes nothing');
      // IMAP reads with BODY.PEEK[]; Dovecot's POP3 RETR marks a message \Seen, as POP3 servers do.
      if (via === 'imap') assert.deepEqual(stored.map((m) => m.flags), [[], [], []], 'IMAP reading leaves messages unread');
      assert.match(servers.logs(), new RegExp(`${via}-login: Info: Login: user=<${MAILBOX}>, method=XOAUTH2`));
    });

    it(`${via}: messages arriving between reads come exactly once`, async () => {
      await servers.deliver(MAILBOX, rawMessage(1));
      const first = await poll(reader(), undefined);
      assert.equal(first.messages.length, 1);

      const added = [rawMessage(2), rawMessage(3)];
      for (const s of added) await servers.deliver(MAILBOX, s);
      const next = await poll(reader(), first.finalCursor);
      assert.deepEqual(next.messages.map((m) => m.source.toString('latin1')), added.map((s) => s.toString('latin1')));
      assert.deepEqual((await poll(reader(), next.finalCursor)).messages, []);
    });

    it(`${via}: afterFetch delete removes the read messages from the server`, async () => {
      for (const n of [1, 2]) await servers.deliver(MAILBOX, rawMessage(n));
      const result = await poll(reader({ afterFetch: 'delete' }), undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'delete' }) });
      assert.equal(result.messages.length, 2);
      assert.deepEqual(await servers.messages(MAILBOX), []);
    });

    it(`${via}: a token granted for another mailbox is refused with EAUTH and nothing is read`, async () => {
      await servers.deliver(MAILBOX, rawMessage(1));
      tokenMailboxes.set(CLIENT_ID, 'someone-else@contoso.com');
      try {
        const error = await mailErrorFrom(reader().open());
        assert.equal(error.code, 'EAUTH', error.message);
      } finally {
        tokenMailboxes.set(CLIENT_ID, MAILBOX);
      }
      assert.match(servers.logs(), new RegExp(`oauth2 failed: Introspection failed: Username '${MAILBOX}' did not match 'someone-else@contoso.com'`));
      assert.equal((await servers.messages(MAILBOX)).length, 1);
      // The next login is not slowed down or refused by an auth penalty.
      assert.equal((await poll(reader(), undefined)).messages.length, 1);
    });
  }

  it('imap: afterFetch markRead sets \\Seen on the server', async () => {
    for (const n of [1, 2]) await servers.deliver(MAILBOX, rawMessage(n));
    const result = await poll(readers.imap(entra, servers, { afterFetch: 'markRead' }), undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'markRead' }) });
    assert.deepEqual(result.messages.map((m) => m.seen), [false, false]);
    assert.deepEqual((await servers.messages(MAILBOX)).map((m) => m.flags), [['\\Seen'], ['\\Seen']]);
  });

  it('imap: afterFetch move puts the messages into moveTo, creating the folder when it is missing', async () => {
    const sources = [rawMessage(1), rawMessage(2)];
    for (const s of sources) await servers.deliver(MAILBOX, s);
    assert.ok(!(await servers.folders(MAILBOX)).includes('Processed'));
    const result = await poll(readers.imap(entra, servers, { afterFetch: 'move', moveTo: 'Processed' }), undefined, {
      afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'move', moveTo: 'Processed' }),
    });
    assert.equal(result.messages.length, 2);
    assert.deepEqual(await servers.messages(MAILBOX), []);
    assert.equal((await servers.messages(MAILBOX, 'Processed')).length, 2);
  });
});
