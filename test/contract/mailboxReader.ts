/**
 * The MailboxReader contract: one suite, written once, run against every reader with its
 * loopback peer (test/transports/<adapter>.contract.test.ts), as unstorage runs one
 * `testDriver` over every driver. An adapter declares what it can do; a case whose ability
 * an adapter lacks is not registered for it (never skipped, so never counted as passed).
 *
 * What each adapter lacks, and why:
 * - Graph: no per-message cursor (a delta round advances as a whole through finalCursor; the
 *   round case covers it); no size (delta answers carry none); no token-renewal case here (its
 *   count of logins does not fit Graph, where every request carries the token: graphReader.test.ts
 *   proves the renewal at the first delta page, and test/receive/pollCost.test.ts through the poll); no ETLS case (the Graph SDK reports a failed TLS handshake
 *   like any request without an answer: ECONNECTION).
 * - POP3: no received time and no read flag (RFC 1939 keeps neither); no markRead, no move
 *   (no flags, one maildrop: the profile schema refuses both); no stale-cursor case (UIDLs are
 *   stable; no UIDVALIDITY or delta token to expire); no missing-folder case (no folders).
 * - IMAP: has every case.
 * - file: no login, no tokens, no TLS, no network (a folder on disk), so no EAUTH, renewal,
 *   ETLS or ECONNECTION case; no read flag (markRead leaves a file as it is); no stale-cursor
 *   case (names only); no missing-folder case (a missing folder is created).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { withAuthRetry } from '../../shared/identity/tokenProvider.js';
import type { MailboxReader, ReaderCursor } from '../../shared/transports/types.js';
import { mailErrorFrom } from '../support/mailError.js';
import { largeMessage, poll, rawMessage, readAll } from '../transports/readerHarness.js';
import { assertNoTokenLeaked, withFixture, type TokenSession } from './fixture.js';

/** A message as the server holds it. `seen` where the server keeps a read flag. */
export interface HeldMessage {
  raw: Buffer;
  seen?: boolean;
}

/** A reader and what to release once the case is done. */
export interface OpenReader {
  reader: MailboxReader;
  close(): Promise<void>;
}

/** A reader over a fresh, empty folder, and the peer's view of that folder. */
export interface ReaderFixture extends OpenReader {
  /** Puts a message into the folder read; answers the providerId the reader will give it. */
  add(raw: Buffer, options: { receivedAt: Date }): string | Promise<string>;
  /** The messages now in the folder read, oldest first, as the server holds them. */
  held(): Promise<HeldMessage[]>;
  /** What the server made of each authentication it was offered, in order (none for the file transport). */
  authentications(): Array<'accepted' | 'refused'>;
}

export interface ReaderAuth<F> {
  /** The fixture's token provider, the tokens it handed out and the fixture's log lines. */
  session(fixture: F): TokenSession;
  /** Token requests the token endpoint has answered so far. */
  tokenRequests(): number;
  /** A fresh mailbox whose server refuses the reader (the app is not granted the mailbox), what the hint must name, and the provider's code. */
  refused?: { mailbox(): Promise<F>; hint: RegExp[]; providerCode: string | undefined };
  /** Makes every token issued so far invalid, as when it expired. */
  expireTokens?(): void;
}

export interface MailboxReaderAdapter<F extends ReaderFixture = ReaderFixture> {
  /** Starts the peers once for the adapter's cases; `stop` ends them. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A reader over a fresh, empty folder. */
  mailbox(): Promise<F>;
  /** What a FetchedMessage carries besides its id and source. */
  reports: { size: boolean; receivedAt: boolean; seen: boolean };
  /** acknowledge answers the cursor right after each message (false: Graph, which advances per round). */
  perMessageCursor: boolean;
  /** The session offers acknowledgeAll (Graph: JSON batches). */
  acknowledgesAll?: boolean;
  /** A cursor of another transport's shape, which must be read as a resync. */
  foreignCursor?: ReaderCursor;
  /** Makes the server stop honouring the cursors it gave for the fixture's folder; answers the ids its messages have now when they changed. */
  invalidateCursors?(fixture: F): string[] | undefined | Promise<string[] | undefined>;
  afterFetch: {
    /** markRead leaves the message read on the server (HeldMessage.seen). */
    markRead: boolean;
    delete: boolean;
    /** A target that does not exist yet, and the messages in it (undefined while it does not exist). */
    move?: { target(fixture: F): string; movedTo(fixture: F, target: string): Promise<Buffer[] | undefined> };
  };
  auth?: ReaderAuth<F>;
  /** A fresh mailbox on a server whose certificate this host does not trust. */
  untrustedServer?(): Promise<F>;
  /** A reader aimed at a loopback port nobody listens on. */
  unreachable?(): Promise<OpenReader>;
  /** A reader of a folder the mailbox does not have. */
  missingFolder?(): Promise<OpenReader>;
}

export function describeMailboxReader<F extends ReaderFixture>(name: string, factory: () => MailboxReaderAdapter<F>): void {
  describe(`${name} keeps the MailboxReader contract`, () => {
    const adapter = factory();
    before(() => adapter.start());
    after(() => adapter.stop());

    const inMailbox = (body: (fixture: F) => Promise<void>) => withFixture(() => adapter.mailbox(), body);

    // Received times a minute apart, in the order the messages are added, on every server that keeps one.
    let clock = Date.UTC(2024, 0, 2, 10, 0, 0);
    async function addAll(fixture: F, sources: Buffer[]): Promise<{ ids: string[]; times: Date[] }> {
      const ids: string[] = [];
      const times: Date[] = [];
      for (const source of sources) {
        const receivedAt = new Date((clock += 60_000));
        times.push(receivedAt);
        ids.push(await fixture.add(source, { receivedAt }));
      }
      return { ids, times };
    }
    const latin1 = (buffers: Buffer[]) => buffers.map((b) => b.toString('latin1'));

    it('the first poll yields every message oldest first, byte for byte (CRLF, 8-bit, lines starting with a dot)', inMailbox(async (f) => {
      const sources = [1, 2, 3].map((n) => rawMessage(n));
      const { ids } = await addAll(f, sources);
      const result = await poll(f.reader, undefined);
      assert.deepEqual(result.messages.map((m) => m.providerId), ids);
      result.messages.forEach((m, i) => assert.ok(m.source.equals(sources[i]!), `message ${i + 1} source differs`));
      assert.equal(result.resynced, false);
      assert.ok(result.finalCursor !== undefined, 'a completed poll leaves a cursor');
    }));

    if (adapter.reports.size) {
      it('each message reports its size in bytes', inMailbox(async (f) => {
        const sources = [rawMessage(1), rawMessage(2, ' with a longer body')];
        await addAll(f, sources);
        const result = await poll(f.reader, undefined);
        assert.deepEqual(result.messages.map((m) => m.size), sources.map((s) => s.length));
      }));
    }

    if (adapter.reports.receivedAt) {
      it('each message reports when the server received it', inMailbox(async (f) => {
        const { times } = await addAll(f, [rawMessage(1), rawMessage(2)]);
        const result = await poll(f.reader, undefined);
        assert.deepEqual(result.messages.map((m) => m.receivedAt?.getTime()), times.map((t) => t.getTime()));
      }));
    }

    if (adapter.reports.seen) {
      it('a new message comes unread, and reading it leaves it unread on the server', inMailbox(async (f) => {
        await addAll(f, [rawMessage(1), rawMessage(2)]);
        const result = await poll(f.reader, undefined);
        assert.deepEqual(result.messages.map((m) => m.seen), [false, false]);
        assert.deepEqual((await f.held()).map((m) => m.seen), [false, false]);
      }));
    }

    it('a second poll from the final cursor yields nothing; mail that arrives after it comes next, exactly once', inMailbox(async (f) => {
      const { ids: firstIds } = await addAll(f, [rawMessage(1), rawMessage(2)]);
      const first = await poll(f.reader, undefined);
      assert.deepEqual(first.messages.map((m) => m.providerId), firstIds);

      const second = await poll(f.reader, first.finalCursor);
      assert.deepEqual(second.messages, []);
      assert.equal(second.resynced, false);
      assert.ok(second.finalCursor !== undefined);

      const added = [rawMessage(3), rawMessage(4)];
      const { ids: addedIds } = await addAll(f, added);
      const third = await poll(f.reader, second.finalCursor);
      assert.deepEqual(third.messages.map((m) => m.providerId), addedIds);
      assert.deepEqual(latin1(third.messages.map((m) => m.source)), latin1(added));
      assert.deepEqual((await poll(f.reader, third.finalCursor)).messages, []);
    }));

    it('a poll yields at most `limit` messages, and polling on from each final cursor loses and repeats none', inMailbox(async (f) => {
      const { ids } = await addAll(f, [1, 2, 3, 4, 5].map((n) => rawMessage(n)));
      const seen: string[] = [];
      const acknowledgedCursors: boolean[] = [];
      const batches: number[] = [];
      let cursor: ReaderCursor | undefined;
      for (;;) {
        const result = await poll(f.reader, cursor, { limit: 2 });
        batches.push(result.messages.length);
        assert.ok(result.finalCursor !== undefined, `poll ${batches.length} left no cursor`);
        cursor = result.finalCursor;
        if (result.messages.length === 0 || batches.length > ids.length) break;
        seen.push(...result.messages.map((m) => m.providerId));
        acknowledgedCursors.push(...result.messages.map((m) => m.cursorAfter !== undefined));
      }
      assert.deepEqual(batches, [2, 2, 1, 0]);
      assert.deepEqual(seen, ids);
      assert.deepEqual(acknowledgedCursors, ids.map(() => adapter.perMessageCursor), adapter.perMessageCursor ? 'acknowledge answers a cursor per message' : 'acknowledge answers none: the round advances as a whole');
    }));

    if (adapter.perMessageCursor) {
      it('the cursor acknowledge answers resumes right after that message', inMailbox(async (f) => {
        const { ids } = await addAll(f, [1, 2, 3, 4, 5].map((n) => rawMessage(n)));
        const first = await poll(f.reader, undefined, { limit: 2 });
        assert.deepEqual(first.messages.map((m) => m.providerId), ids.slice(0, 2));
        const [afterFirst, afterSecond] = first.messages.map((m) => m.cursorAfter);
        assert.ok(afterFirst && afterSecond);
        assert.deepEqual(first.finalCursor, afterSecond);
        assert.deepEqual((await poll(f.reader, afterFirst, { limit: 10 })).messages.map((m) => m.providerId), ids.slice(1));
        assert.deepEqual((await poll(f.reader, afterSecond, { limit: 10 })).messages.map((m) => m.providerId), ids.slice(2));
      }));
    }

    const { foreignCursor } = adapter;
    if (foreignCursor) {
      it("a cursor of another transport's shape restarts from the oldest message and says so (resynced)", inMailbox(async (f) => {
        const { ids } = await addAll(f, [rawMessage(1), rawMessage(2)]);
        const result = await poll(f.reader, foreignCursor);
        assert.equal(result.resynced, true);
        assert.deepEqual(result.messages.map((m) => m.providerId), ids);
        const next = await poll(f.reader, result.finalCursor);
        assert.equal(next.resynced, false);
        assert.deepEqual(next.messages, []);
      }));
    }

    const invalidate = adapter.invalidateCursors?.bind(adapter);
    if (invalidate) {
      it('a cursor the server no longer honours restarts from the oldest message and says so; the poll after it is back to normal', inMailbox(async (f) => {
        const sources = [rawMessage(1), rawMessage(2)];
        const { ids } = await addAll(f, sources);
        const first = await poll(f.reader, undefined);
        const renamed = (await invalidate(f)) ?? ids;
        const later = rawMessage(3);
        const { ids: laterIds } = await addAll(f, [later]);

        const again = await poll(f.reader, first.finalCursor);
        assert.equal(again.resynced, true);
        assert.deepEqual(again.messages.map((m) => m.providerId), [...renamed, ...laterIds]);
        assert.deepEqual(latin1(again.messages.map((m) => m.source)), latin1([...sources, later]));
        const next = await poll(f.reader, again.finalCursor);
        assert.equal(next.resynced, false);
        assert.deepEqual(next.messages, []);
      }));
    }

    it('afterFetch none leaves the mailbox as it was', inMailbox(async (f) => {
      await addAll(f, [rawMessage(1), rawMessage(2)]);
      const before = await f.held();
      const result = await poll(f.reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'none' }) });
      assert.equal(result.messages.length, 2);
      assert.deepEqual(await f.held(), before);
    }));

    if (adapter.afterFetch.markRead) {
      it('afterFetch markRead leaves each fetched message read on the server', inMailbox(async (f) => {
        await addAll(f, [rawMessage(1), rawMessage(2)]);
        await poll(f.reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'markRead' }) });
        assert.deepEqual((await f.held()).map((m) => m.seen), [true, true]);
      }));
    }

    const move = adapter.afterFetch.move;
    if (move) {
      it('afterFetch move takes each fetched message out of the folder into the target, which is created when missing', inMailbox(async (f) => {
        const sources = [rawMessage(1), rawMessage(2)];
        await addAll(f, sources);
        const target = move.target(f);
        assert.equal(await move.movedTo(f, target), undefined, 'the target does not exist before the poll');
        await poll(f.reader, undefined, { afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'move', moveTo: target }) });
        assert.deepEqual(await f.held(), []);
        const moved = await move.movedTo(f, target);
        assert.ok(moved, 'the target folder exists');
        assert.deepEqual(latin1(moved), latin1(sources));
      }));
    }

    if (adapter.afterFetch.delete) {
      it('afterFetch delete removes the fetched messages, and only those', inMailbox(async (f) => {
        const sources = [1, 2, 3].map((n) => rawMessage(n));
        await addAll(f, sources);
        const result = await poll(f.reader, undefined, { limit: 2, afterEach: (session, m) => session.acknowledge(m, { afterFetch: 'delete' }) });
        assert.equal(result.messages.length, 2);
        assert.deepEqual(latin1((await f.held()).map((m) => m.raw)), latin1(sources.slice(2)));
      }));
    }

    if (adapter.acknowledgesAll && adapter.afterFetch.markRead && adapter.afterFetch.delete) {
      it('acknowledgeAll applies each afterFetch as acknowledge would and answers each, in the order given', inMailbox(async (f) => {
        const sources = [1, 2, 3].map((n) => rawMessage(n));
        await addAll(f, sources);
        const session = await f.reader.open();
        try {
          const fetched = [];
          for await (const m of session.messages(undefined, { limit: 10 })) fetched.push(m);
          assert.ok(session.acknowledgeAll);
          const answers = await session.acknowledgeAll([
            { message: fetched[0]!, afterFetch: 'markRead' },
            { message: fetched[1]!, afterFetch: 'none' },
            { message: fetched[2]!, afterFetch: 'delete' },
          ], {});
          assert.deepEqual(answers.map((a) => a.ok), [true, true, true]);
        } finally {
          await session.close();
        }
        const held = await f.held();
        assert.deepEqual(latin1(held.map((m) => m.raw)), latin1(sources.slice(0, 2)));
        assert.deepEqual(held.map((m) => m.seen), [true, false]);
      }));
    }

    const auth = adapter.auth;
    const refused = auth?.refused;
    if (auth && refused) {
      it('a login the server refuses is EAUTH with a hint naming what to grant, and no access token reaches the error or the logs', withFixture(() => refused.mailbox(), async (f) => {
        await addAll(f, [rawMessage(1)]);
        const error = await mailErrorFrom(poll(f.reader, undefined));
        assert.equal(error.code, 'EAUTH');
        for (const pattern of refused.hint) assert.match(error.hint ?? '', pattern);
        assert.equal(error.providerCode, refused.providerCode);
        assert.deepEqual(f.authentications(), ['refused'], 'one refused login, and no other way in tried');
        assertNoTokenLeaked(auth.session(f), [error.message, error.hint ?? '']);
      }));
    }

    const expireTokens = auth?.expireTokens?.bind(auth);
    if (auth && expireTokens) {
      it('a token the server refuses once is renewed once by withAuthRetry, and the poll goes on', inMailbox(async (f) => {
        const source = rawMessage(1);
        await addAll(f, [source]);
        assert.equal((await poll(f.reader, undefined)).messages.length, 1);
        expireTokens();
        const requestsBefore = auth.tokenRequests();
        const loginsBefore = f.authentications().length;

        const session = await withAuthRetry(auth.session(f).deps.tokens, () => f.reader.open());
        const read: Buffer[] = [];
        try {
          for await (const m of session.messages(undefined, { limit: 10 })) {
            read.push(await readAll(await m.openSource()));
            await session.acknowledge(m, { afterFetch: 'none' });
          }
        } finally {
          await session.close();
        }

        assert.deepEqual(latin1(read), latin1([source]));
        assert.deepEqual(f.authentications().slice(loginsBefore), ['refused', 'accepted']);
        assert.equal(auth.tokenRequests() - requestsBefore, 1, 'exactly one new token');
        const { tokensSeen } = auth.session(f);
        assert.notEqual(tokensSeen.at(-1), tokensSeen[0], 'the renewed token is a new one');
        assertNoTokenLeaked(auth.session(f));
      }));
    }

    it('a message of 5 MiB streams through with the same bytes', inMailbox(async (f) => {
      const big = largeMessage(5 * 1024 * 1024);
      await addAll(f, [big]);
      const result = await poll(f.reader, undefined);
      assert.equal(result.messages.length, 1);
      assert.equal(result.messages[0]!.source.length, big.length);
      assert.ok(result.messages[0]!.source.equals(big));
    }));

    const untrustedServer = adapter.untrustedServer?.bind(adapter);
    if (untrustedServer) {
      it('a server whose certificate this host does not trust is ETLS, and no login is offered to it', withFixture(untrustedServer, async (f) => {
        const error = await mailErrorFrom(poll(f.reader, undefined));
        assert.equal(error.code, 'ETLS');
        assert.deepEqual(f.authentications(), []);
      }));
    }

    const unreachable = adapter.unreachable?.bind(adapter);
    if (unreachable) {
      it('nobody listening is ECONNECTION', withFixture(unreachable, async (f) => {
        assert.equal((await mailErrorFrom(poll(f.reader, undefined))).code, 'ECONNECTION');
      }));
    }

    const missingFolder = adapter.missingFolder?.bind(adapter);
    if (missingFolder) {
      it('a folder the mailbox does not have is EMAILBOX', withFixture(missingFolder, async (f) => {
        assert.equal((await mailErrorFrom(poll(f.reader, undefined))).code, 'EMAILBOX');
      }));
    }
  });
}
