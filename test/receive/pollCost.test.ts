import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { profilesHealth } from '../../shared/health/report.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { ReceiveHarness, composeEml } from '../support/receiveHarness.js';

const TENANT = 'contoso-tenant';
const CLIENT_ID = 'poll-cost-app';
const SECRET = 'poll-cost-secret-1';

const ticket = (mailbox: string, n: number) => composeEml({ from: `user${n}@fabrikam.com`, to: mailbox, subject: `Request ${n}`, text: `Please help with ${n}`, messageId: `<cost-${n}-${mailbox}>` });

/**
 * Issue 11, item 3: what a poll costs at the server, counted at the loopback stand-ins (never
 * timed). Graph: an idle poll is one delta request; each new message one `$value` and its share of
 * the delta page; afterFetch goes in JSON batches of up to 20. IMAP: an idle poll is one login and
 * one UID SEARCH, with the commands around them that imapflow's login and SELECT send.
 */
describe('what a poll costs at the server', () => {
  const h = new ReceiveHarness();
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  let count = 0;
  before(async () => {
    await Promise.all([h.start(), entra.start(), graph.start()]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
  });
  after(() => Promise.all([h.stop(), graph.stop(), entra.stop()]));

  function runtimeFor(mailbox: string, receive: Record<string, unknown>, endpoints: Record<string, string>) {
    const name = `cost${++count}`;
    const profile = {
      mailbox, tenantId: TENANT, clientId: CLIENT_ID,
      auth: { type: 'clientSecret', secret: 'poll-cost-secret' },
      receive: { deliver: { queue: { name: `cost-${count}` } }, ...receive },
      endpoints: { authority: entra.url, ...endpoints },
    };
    return { name, runtime: h.runtime({ [name]: profile }, { POLL_COST_SECRET: SECRET }) };
  }

  /** A fresh Graph mailbox and a counter of the HTTP requests that reached the stand-in since the last look. */
  function graphMailbox() {
    const mailbox = `graphcost${++count}@contoso.com`;
    graph.addMailbox(mailbox);
    const mine = (path: string) => path.includes(`/users/${encodeURIComponent(mailbox)}/`) || path === '/v1.0/$batch';
    let seen = graph.requests.length;
    let seenBatched = graph.batched.length;
    return {
      mailbox,
      /** The requests since the last call: as `METHOD kind`, and those carried inside batches. */
      since() {
        const http = graph.requests.slice(seen).filter((r) => mine(r.path));
        const batched = graph.batched.slice(seenBatched);
        seen = graph.requests.length;
        seenBatched = graph.batched.length;
        const kind = (path: string) => (path.endsWith('/messages/delta') ? 'delta' : path.endsWith('/$value') ? '$value' : path.endsWith('/$batch') ? '$batch' : path);
        return { http: http.map((r) => `${r.method} ${kind(r.path)}`), batched };
      },
    };
  }

  it('Graph: a poll that finds nothing new is one delta request, however often it runs', async () => {
    const g = graphMailbox();
    const { name, runtime } = runtimeFor(g.mailbox, { via: 'graph', afterFetch: 'markRead' }, { graph: graph.url });
    await pollMailbox(runtime, name);
    assert.deepEqual(g.since().http, ['GET delta'], 'the first poll of an empty folder');
    for (let i = 0; i < 3; i++) {
      const result = await pollMailbox(runtime, name);
      assert.equal(result.status, 'completed');
      assert.deepEqual(g.since().http, ['GET delta']);
    }
  });

  it('Graph: each new message costs one $value and its share of the delta page; markRead goes in batches of 20, not a request per message', async () => {
    const g = graphMailbox();
    const { name, runtime } = runtimeFor(g.mailbox, { via: 'graph', afterFetch: 'markRead' }, { graph: graph.url });
    await pollMailbox(runtime, name);
    g.since();
    for (let n = 1; n <= 45; n++) graph.mail.addMessage(g.mailbox, 'inbox', await ticket(g.mailbox, n));
    const result = await pollMailbox(runtime, name);
    assert.equal(result.delivered, 45, JSON.stringify(result.error));
    const { http, batched } = g.since();
    // 45 messages: one window of 45 (up to 50), one delta page (up to 100), batches of 20, 20 and 5.
    assert.deepEqual(http.filter((r) => r === 'GET delta'), ['GET delta']);
    assert.equal(http.filter((r) => r === 'GET $value').length, 45);
    assert.equal(http.filter((r) => r === 'POST $batch').length, 3);
    assert.equal(http.length, 1 + 45 + 3, `nothing else: ${http.filter((r) => !['GET delta', 'GET $value', 'POST $batch'].includes(r)).join(', ')}`);
    assert.deepEqual(batched.map((b) => b.method), Array(45).fill('PATCH'));
    assert.ok(batched.every((b) => b.status === 200 && /IdType="ImmutableId"/.test(b.headers.prefer ?? '')));
    assert.ok(graph.mail.messagesIn(g.mailbox, 'inbox').every((m) => m.isRead));
    await pollMailbox(runtime, name);
    assert.deepEqual(g.since().http, ['GET delta'], 'marked read, nothing comes back (changeType=created)');
  });

  it('Graph: afterFetch move and delete go in batches too (the target folder created once, before them)', async () => {
    for (const afterFetch of ['move', 'delete'] as const) {
      const g = graphMailbox();
      const { name, runtime } = runtimeFor(g.mailbox, { via: 'graph', afterFetch, ...(afterFetch === 'move' && { moveTo: 'Processed' }) }, { graph: graph.url });
      for (let n = 1; n <= 3; n++) graph.mail.addMessage(g.mailbox, 'inbox', await ticket(g.mailbox, n));
      assert.equal((await pollMailbox(runtime, name)).delivered, 3);
      const { http, batched } = g.since();
      assert.equal(http.filter((r) => r === 'POST $batch').length, 1);
      assert.deepEqual(batched.map((b) => `${b.method} ${b.path.split('/').at(-1) === 'move' ? 'move' : 'message'}`), Array(3).fill(afterFetch === 'move' ? 'POST move' : 'DELETE message'));
      assert.deepEqual(graph.mail.messagesIn(g.mailbox, 'inbox'), []);
      assert.equal((afterFetch === 'move' ? graph.mail.messagesInFolderNamed(g.mailbox, 'Processed') : graph.mail.messagesIn(g.mailbox, 'deleteditems'))?.length, 3);
    }
  });

  it('Graph: a change Graph throttles inside the batch (429 with Retry-After) is sent again, alone, and the poll completes', async () => {
    const g = graphMailbox();
    const { name, runtime } = runtimeFor(g.mailbox, { via: 'graph', afterFetch: 'markRead' }, { graph: graph.url });
    for (let n = 1; n <= 5; n++) graph.mail.addMessage(g.mailbox, 'inbox', await ticket(g.mailbox, n));
    graph.inject({ status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfter: 0, times: 2, match: /^PATCH .*\/messages\// });
    const result = await pollMailbox(runtime, name);
    assert.deepEqual([result.status, result.delivered], ['completed', 5], JSON.stringify(result.error));
    const { http, batched } = g.since();
    assert.equal(http.filter((r) => r === 'POST $batch').length, 2, 'the batch, then one more for the two it throttled');
    assert.deepEqual(batched.map((b) => b.status), [429, 429, 200, 200, 200, 200, 200]);
    assert.equal(new Set(batched.slice(5).map((b) => b.path)).size, 2);
    assert.deepEqual(new Set(batched.slice(5).map((b) => b.path)), new Set(batched.slice(0, 2).map((b) => b.path)), 'only the throttled ones were sent again');
    assert.ok(graph.mail.messagesIn(g.mailbox, 'inbox').every((m) => m.isRead));
    // Each 429 inside the batch is one Graph gave: counted in the governor's health as a whole 429 is (written off the poll's path: read until it is there).
    let throttled = 0;
    for (let i = 0; i < 50 && throttled < 2; i++) {
      throttled = (await profilesHealth(runtime)).governor.find((entry) => entry.profile === name)?.graph?.throttled ?? 0;
      if (throttled < 2) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(throttled, 2);
  });

  it('Graph: a change Graph refuses inside the batch fails the poll as a refused single request did, keeps the delta cursor, and the next poll applies it', async () => {
    const g = graphMailbox();
    const { name, runtime } = runtimeFor(g.mailbox, { via: 'graph', afterFetch: 'markRead' }, { graph: graph.url });
    await pollMailbox(runtime, name);
    const before = await pollMailbox(runtime, name);
    for (let n = 1; n <= 4; n++) graph.mail.addMessage(g.mailbox, 'inbox', await ticket(g.mailbox, n));
    graph.inject({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.', times: 1, match: /^PATCH .*\/messages\// });
    const failed = await pollMailbox(runtime, name);
    assert.deepEqual([failed.status, failed.error?.code, failed.delivered], ['failed', 'EAUTH', 4]);
    assert.deepEqual(failed.cursor, before.cursor, 'the deltaLink stays where it was');
    assert.equal(graph.mail.messagesIn(g.mailbox, 'inbox').filter((m) => !m.isRead).length, 1);
    const again = await pollMailbox(runtime, name);
    assert.deepEqual([again.status, again.delivered, again.duplicates], ['completed', 0, 4]);
    assert.ok(graph.mail.messagesIn(g.mailbox, 'inbox').every((m) => m.isRead));
    assert.notDeepEqual(again.cursor, before.cursor);
  });

  it('Graph: a token Graph refuses at the first delta page is renewed once by the poll, which then reads with the new token', async () => {
    const g = graphMailbox();
    const { name, runtime } = runtimeFor(g.mailbox, { via: 'graph' }, { graph: graph.url });
    graph.mail.addMessage(g.mailbox, 'inbox', await ticket(g.mailbox, 1));
    await pollMailbox(runtime, name);
    graph.mail.addMessage(g.mailbox, 'inbox', await ticket(g.mailbox, 2));
    entra.revokeAll();
    const tokens = entra.tokenRequests().length;
    g.since();
    const result = await pollMailbox(runtime, name);
    assert.deepEqual([result.status, result.delivered], ['completed', 1], JSON.stringify(result.error));
    assert.equal(entra.tokenRequests().length - tokens, 1, 'exactly one new token');
    const statuses = graph.requests.slice(-3).map((r) => r.status);
    assert.deepEqual(g.since().http, ['GET delta', 'GET delta', 'GET $value'], `the refused page, then the round with the new token (${statuses.join(', ')})`);
  });

  it('IMAP: afterFetch for a window is one command over a UID set (UID STORE, UID MOVE, UID STORE + UID EXPUNGE), not one per message', async () => {
    for (const afterFetch of ['markRead', 'move', 'delete'] as const) {
      const mailbox = `imap${afterFetch}@contoso.com`;
      const imap = await new ImapPeer(entra, { mailbox, folders: ['Processed'] }).start();
      try {
        const { name, runtime } = runtimeFor(mailbox, { via: 'imap', afterFetch, ...(afterFetch === 'move' && { moveTo: 'Processed' }) }, { imap: imap.endpoint });
        for (let n = 1; n <= 5; n++) imap.append('INBOX', await ticket(mailbox, n));
        const result = await pollMailbox(runtime, name);
        assert.deepEqual([result.status, result.delivered], ['completed', 5], JSON.stringify(result.error));
        const changes = imap.commands.map((c) => c.trim().split(/\s+/).slice(1).join(' ')).filter((c) => /^UID (STORE|MOVE|EXPUNGE)/.test(c));
        const expected = { markRead: ['UID STORE 1:5 +FLAGS (\\Seen)'], move: ['UID MOVE 1:5 Processed'], delete: ['UID STORE 1:5 +FLAGS (\\Deleted)', 'UID EXPUNGE 1:5'] }[afterFetch];
        assert.deepEqual(changes.map((c) => c.replace(/\\\\/g, '\\')), expected);
        if (afterFetch === 'markRead') assert.ok(imap.messages('INBOX').every((m) => m.flags.includes('\\Seen')));
        else assert.equal(imap.messages('INBOX').length, 0);
        if (afterFetch === 'move') assert.equal(imap.messages('Processed').length, 5);
      } finally {
        await imap.stop();
      }
    }
  });

  it('IMAP: a poll that finds nothing new is one login and one UID SEARCH; besides, only what the login and SELECT need', async () => {
    const mailbox = 'imapcost@contoso.com';
    const imap = await new ImapPeer(entra, { mailbox }).start();
    try {
      const { name, runtime } = runtimeFor(mailbox, { via: 'imap', afterFetch: 'markRead' }, { imap: imap.endpoint });
      imap.append('INBOX', await ticket(mailbox, 1));
      assert.equal((await pollMailbox(runtime, name)).delivered, 1);
      for (let i = 0; i < 2; i++) {
        const before = imap.commands.length;
        assert.equal((await pollMailbox(runtime, name)).status, 'completed');
        const names = imap.commands.slice(before).map((c) => c.trim().split(/\s+/).slice(1, 3).join(' ').replace(/^(?!UID )(\S+).*$/, '$1').toUpperCase());
        const counted = (command: string) => names.filter((n) => n === command).length;
        assert.equal(counted('AUTHENTICATE'), 1, names.join(', '));
        assert.equal(counted('UID SEARCH'), 1, names.join(', '));
        assert.equal(counted('SELECT'), 1, 'UID SEARCH needs a selected folder (RFC 3501 6.4.4); SELECT, not EXAMINE, since afterFetch may change messages');
        // imapflow's login: CAPABILITY before and after AUTHENTICATE, ID (again after it when the server's first answer was short), NAMESPACE;
        // its SELECT of a folder this connection has not listed: LIST and LSUB first. Nothing else: no FETCH, STORE, NOOP, STATUS, ENABLE or COMPRESS.
        const allowed = new Set(['CAPABILITY', 'ID', 'AUTHENTICATE', 'NAMESPACE', 'LIST', 'LSUB', 'SELECT', 'UID SEARCH', 'LOGOUT']);
        assert.deepEqual(names.filter((n) => !allowed.has(n)), []);
        assert.ok(counted('CAPABILITY') <= 2 && counted('ID') <= 2 && counted('LIST') <= 1 && counted('LSUB') <= 1 && counted('NAMESPACE') === 1 && counted('LOGOUT') === 1, names.join(', '));
      }
    } finally {
      await imap.stop();
    }
  });
});
