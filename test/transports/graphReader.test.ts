import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Profile } from '../../shared/config/profiles.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { ProfileTokenProvider, withAuthRetry } from '../../shared/identity/tokenProvider.js';
import { silentLogger } from '../../shared/log.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore } from '../../shared/secrets/store.js';
import { createReader } from '../../shared/transports/index.js';
import type { FetchedMessage, MailboxReader, MailboxSession, ReaderCursor } from '../../shared/transports/types.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';

const TENANT = 'contoso-tenant';
const APP = { tenantId: TENANT, clientId: 'graph-reader-app', secret: 'graph-reader-secret-value' };

function rawMessage(n: number, body = `Body of message ${n}\r\n`): string {
  return [`From: Sender ${n} <sender${n}@example.com>`, 'To: support@contoso.com', `Subject: Message ${n}`, `Message-ID: <msg-${n}@example.com>`, 'Date: Mon, 1 Jan 2024 10:00:00 +0000', 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', body].join('\r\n');
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function collect(session: MailboxSession, cursor: ReaderCursor | undefined, limit = 100): Promise<FetchedMessage[]> {
  const out: FetchedMessage[] = [];
  for await (const message of session.messages(cursor, { limit })) out.push(message);
  return out;
}

// What every reader does (order, bytes, cursors, resync, afterFetch, EAUTH, ECONNECTION,
// EMAILBOX) is the MailboxReader contract's: graph.contract.test.ts. Here: Graph delta's own.
describe('reading a mailbox folder over Microsoft Graph delta: the real Graph client against the Graph stand-in', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  let mailboxSeq = 0;
  let mailbox: string;
  let reader: MailboxReader;
  let receivedAt = Date.parse('2024-01-01T10:00:00Z');

  before(async () => {
    await entra.start();
    await graph.start();
    entra.register({ ...APP });
  });
  after(async () => {
    await graph.stop();
    await entra.stop();
  });
  beforeEach(() => {
    // A fresh mailbox per test keeps their folders and change logs apart.
    mailbox = `reader${++mailboxSeq}@contoso.com`;
    graph.addMailbox(mailbox);
    graph.mail.maxPageSize = undefined;
    reader = createReader(profile(), tokensFor(profile()));
  });

  function profile(receive: Record<string, unknown> = {}): Profile {
    return parseProfiles({ profiles: { support: {
      mailbox, tenantId: TENANT, clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'reader-client-secret' },
      receive: { via: 'graph', folder: 'Inbox', afterFetch: 'none', deliver: { queue: { name: 'mail-incoming' } }, ...receive },
      endpoints: { authority: entra.url, graph: graph.url },
    } } }, 'test').profiles.get('support')!;
  }

  function tokensFor(p: Profile) {
    return { tokens: new ProfileTokenProvider(p, new CachedSecretStore(new EnvironmentSecretStore({ READER_CLIENT_SECRET: APP.secret }))), logger: silentLogger };
  }

  function deliver(n: number, folder = 'inbox'): string {
    receivedAt += 60_000;
    return graph.mail.addMessage(mailbox, folder, rawMessage(n), { receivedAt: new Date(receivedAt) });
  }

  it('open asks Graph nothing for a well-known folder; a token Graph refuses shows at the first delta page, and a caller that retries open and that read together (as the poll does) renews it once', async () => {
    const p = profile();
    const deps = tokensFor(p);
    const r = createReader(p, deps);
    deliver(1);
    assert.equal((await collect(await r.open(), undefined)).length, 1, 'a token is cached');
    entra.revokeAll();
    const requests = graph.requests.length;
    const session = await r.open();
    assert.equal(graph.requests.length, requests, 'open sent nothing');
    assert.equal((await mailErrorFrom(collect(session, undefined))).code, 'EAUTH');
    const tokenRequests = entra.tokenRequests().length;
    const messages = await withAuthRetry(deps.tokens, async () => collect(await r.open(), undefined));
    assert.equal(messages.length, 1);
    assert.equal(entra.tokenRequests().length - tokenRequests, 1, 'exactly one new token');
  });

  it('follows @odata.nextLink across pages, keeps the deltaLink as the cursor, and streams each MIME intact from $value', async () => {
    graph.mail.maxPageSize = 3;
    const ids = [1, 2, 3, 4, 5, 6, 7].map((n) => deliver(n));
    const before = graph.apiRequests('GET', /\/messages\/delta$/).length;
    const session = await reader.open();
    const messages = await collect(session, undefined);
    assert.deepEqual(messages.map((m) => m.providerId), ids, 'every message once, oldest first');
    assert.equal(session.resynced, false);
    const deltaRequests = graph.apiRequests('GET', /\/messages\/delta$/).slice(before);
    assert.equal(deltaRequests.length, 3, 'pages of 3, 3 and 1');
    assert.equal(deltaRequests[0]!.query.get('changeType'), 'created');
    assert.match(String(deltaRequests[0]!.headers.prefer), /IdType="ImmutableId", odata\.maxpagesize=100/);
    assert.ok(deltaRequests[1]!.query.get('$skiptoken'), 'the second page came from the nextLink');
    const cursor = session.finalCursor() as { deltaLink?: string };
    assert.match(cursor.deltaLink ?? '', /\/messages\/delta\?\$deltatoken=/);
    for (const [i, message] of messages.entries()) {
      assert.equal((await readAll(await message.openSource())).toString('utf8'), rawMessage(i + 1));
      assert.equal(message.seen, false);
      assert.ok(message.receivedAt instanceof Date);
    }
    await session.close();
  });

  it('a message marked read after its round does not come back in the next one (delta asks for changeType=created only)', async () => {
    const first = [1, 2].map((n) => deliver(n));
    const session = await reader.open();
    const round1 = await collect(session, undefined);
    assert.deepEqual(round1.map((m) => m.providerId), first);
    const cursor = session.finalCursor();
    await session.acknowledge(round1[0]!, { afterFetch: 'markRead' });
    const later = [3, 4].map((n) => deliver(n));
    const round2 = await collect(session, cursor);
    assert.deepEqual(round2.map((m) => m.providerId), later);
    assert.equal(session.resynced, false);
  });

  it('within a page messages come oldest first; equal times, and messages without receivedDateTime (after the dated ones), keep the page order', async () => {
    const at = (iso: string) => ({ receivedAt: iso === '' ? null : new Date(iso) });
    const times = ['2024-02-01T10:05:00Z', '', '2024-02-01T10:00:00Z', '', '2024-02-01T10:00:00Z', '2024-02-01T09:00:00Z', '', '2024-02-01T10:05:00Z'];
    const ids = times.map((iso, i) => graph.mail.addMessage(mailbox, 'inbox', rawMessage(i + 1), at(iso)));
    const session = await reader.open();
    const messages = await collect(session, undefined);
    assert.deepEqual(messages.map((m) => ids.indexOf(m.providerId) + 1), [6, 3, 5, 1, 8, 2, 4, 7]);
    assert.deepEqual(messages.map((m) => m.receivedAt?.toISOString()), [
      '2024-02-01T09:00:00.000Z', '2024-02-01T10:00:00.000Z', '2024-02-01T10:00:00.000Z', '2024-02-01T10:05:00.000Z', '2024-02-01T10:05:00.000Z', undefined, undefined, undefined,
    ]);
  });

  it('a consumer that stops early leaves no cursor, so the stored one stays', async () => {
    [1, 2, 3].forEach((n) => deliver(n));
    const session = await reader.open();
    for await (const message of session.messages(undefined, { limit: 100 })) {
      assert.ok(message.providerId);
      break;
    }
    assert.equal(session.finalCursor(), undefined);
  });

  it('a move to a nested folder creates each missing level once and keeps the immutable id; delete puts the message in Deleted Items, as Graph does', async () => {
    const [b, c, d] = [1, 2, 3].map((n) => deliver(n));
    const session = await reader.open();
    const byId = new Map((await collect(session, undefined)).map((m) => [m.providerId, m]));
    await session.acknowledge(byId.get(b!)!, { afterFetch: 'move', moveTo: 'Processed/2024' });
    await session.acknowledge(byId.get(c!)!, { afterFetch: 'move', moveTo: 'Processed/2024' });
    const folderCreates = graph.apiRequests('POST', /\/(mailFolders|childFolders)$/).filter((r) => r.path.includes(encodeURIComponent(mailbox)));
    assert.equal(folderCreates.length, 2, 'Processed and Processed/2024 created once each');
    assert.deepEqual(graph.apiRequests('POST', /\/move$/).slice(-2).map((r) => r.status), [201, 201]);

    await session.acknowledge(byId.get(d!)!, { afterFetch: 'delete' });
    assert.deepEqual(graph.mail.messagesIn(mailbox, 'deleteditems').map((m) => m.id), [d]);

    const processed = createReader(profile({ folder: 'Processed/2024' }), tokensFor(profile()));
    const moved = await collect(await processed.open(), undefined);
    assert.deepEqual(moved.map((m) => m.providerId).sort(), [b, c].sort(), 'moved messages kept their ids and are readable in the new folder');
  });

  it('an expired delta token is answered 410 syncStateNotFound, and the round restarts with a request that carries no token', async () => {
    [1, 2].forEach((n) => deliver(n));
    const session = await reader.open();
    await collect(session, undefined);
    const cursor = session.finalCursor();
    graph.mail.expireDeltaTokens();
    const before = graph.apiRequests('GET', /\/messages\/delta$/).length;
    assert.equal((await collect(session, cursor)).length, 2);
    assert.equal(session.resynced, true);
    const requests = graph.apiRequests('GET', /\/messages\/delta$/).slice(before);
    assert.deepEqual(requests.map((r) => [r.status, r.errorCode]), [[410, 'syncStateNotFound'], [200, undefined]]);
    assert.ok(requests[0]!.query.get('$deltatoken'), 'the refused request carried the stored token');
    assert.equal(requests[1]!.query.get('$deltatoken'), null, 'the restart carries none');
  });

  it('a folder that does not exist is EMAILBOX naming receive.folder', async () => {
    const missing = createReader(profile({ folder: 'No Such Folder' }), tokensFor(profile()));
    const error = await mailErrorFrom(missing.open());
    assert.equal(error.code, 'EMAILBOX');
    assert.equal(error.field, 'receive.folder');
    assert.match(error.message, /No Such Folder/);
  });
});
