import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { parseMessage } from '../../shared/mail/parse.js';
import { pollMailbox, type PollResult } from '../../shared/receive/pollMailbox.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { CORPUS_PROFILE, comparable, corpus, type CorpusMessage } from '../fixtures/corpus.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { Pop3Peer, crlfLines } from '../peers/pop3Peer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';
import { HOOK_SECRET, ReceiveHarness, dropEml } from '../support/receiveHarness.js';

const TENANT = 'contoso-tenant';
const CLIENT_ID = 'corpus-reader-app';
const SECRET = 'corpus-reader-secret-1';
const READERS = ['imap', 'pop3', 'graph', 'file'] as const;
type Via = (typeof READERS)[number];

/** The messages a robot sent: auto-replies, bounces, receipts, bulk and alerts. */
const ROBOTS = ['monitoring-alert', 'auto-reply-rfc3834', 'exchange-oof', 'oof-subject-only', 'dsn-bounce', 'exchange-ndr', 'newsletter-bulk', 'read-receipt', 'vacation-x-autoreply'];
const CHARSETS = ['plain-utf8', 'iso-8859-1', 'windows-1252', 'iso-2022-jp', 'koi8-r'];

/** One reader's run: its own Azurite (the dedupe table is per profile name, and all four profiles are "support"), webhook consumer, polls. */
interface Run {
  via: Via;
  harness: ReceiveHarness;
  first?: PollResult;
  second?: PollResult;
  /** Webhook requests answered by the end of the first poll. */
  afterFirst: number;
}

/**
 * The corpus read from an IMAP, a POP3, a Graph mailbox and the file inbox, each polled in
 * full through pollMailbox with real clients (imapflow, our POP3 client, the Graph SDK,
 * @azure/identity) against loopback peers, delivered to a signed webhook.
 */
describe('the same 50 messages delivered through IMAP, POP3, Graph and the file inbox give the same JSON', () => {
  const entra = new TokenEndpointPeer();
  const runs = new Map<Via, Run>(READERS.map((via) => [via, { via, harness: new ReceiveHarness(), afterFirst: 0 }]));
  let imap: ImapPeer | undefined;
  let pop3: Pop3Peer | undefined;
  let graph: GraphPeer | undefined;
  let messages: CorpusMessage[] = [];
  let wellFormed: CorpusMessage[] = [];
  let malformed: CorpusMessage;
  /** What parsing the stored bytes directly gives, by corpus name. */
  const oracle = new Map<string, DeliveredMessage>();

  const run = (via: Via): Run => runs.get(via)!;

  before(async () => {
    messages = await corpus();
    wellFormed = messages.filter((m) => m.expect.error === undefined);
    malformed = messages.find((m) => m.expect.error === 'EPARSE')!;
    await Promise.all([entra.start(), ...[...runs.values()].map((r) => r.harness.start())]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
    const imapServer = (imap = await new ImapPeer(entra, { mailbox: CORPUS_PROFILE.mailbox }).start());
    const pop3Server = (pop3 = await new Pop3Peer(entra, { mailbox: CORPUS_PROFILE.mailbox }).start());
    const graphServer = (graph = await new GraphPeer(entra).start());
    graphServer.addMailbox(CORPUS_PROFILE.mailbox);

    // The same bytes, in corpus order, into every mailbox.
    const inbox = run('file').harness.folder('inbox');
    messages.forEach((m, i) => {
      const at = new Date(Date.UTC(2024, 2, 1, 9, i));
      imapServer.append('INBOX', m.raw, { internalDate: at });
      pop3Server.add(m.raw);
      graphServer.mail.addMessage(CORPUS_PROFILE.mailbox, 'inbox', m.raw, { receivedAt: at });
      dropEml(inbox, `${String(i).padStart(2, '0')}-${m.name}.eml`, m.raw, i);
    });
    for (const m of wellFormed) oracle.set(m.name, await parseMessage(m.raw, { profile: CORPUS_PROFILE, via: 'file', providerId: m.name }));

    const endpoints: Record<Via, Record<string, string>> = { imap: { imap: imapServer.endpoint }, pop3: { pop3: pop3Server.endpoint }, graph: { graph: graphServer.url }, file: {} };
    const afterFetch: Record<Via, string> = { imap: 'markRead', pop3: 'none', graph: 'markRead', file: 'none' };
    const runtimes = new Map(
      READERS.map((via) => {
        const h = run(via).harness;
        const receive = {
          via,
          afterFetch: afterFetch[via],
          ...(via === 'file' && { folder: inbox }),
          deliver: { webhook: { url: h.webhook.url, signingSecret: 'hook-signing-key' } },
          tags: CORPUS_PROFILE.receive.tags,
        };
        const profile =
          via === 'file'
            ? { mailbox: CORPUS_PROFILE.mailbox, auth: { type: 'none' }, receive }
            : { mailbox: CORPUS_PROFILE.mailbox, tenantId: TENANT, clientId: CLIENT_ID, auth: { type: 'clientSecret', secret: 'corpus-app-secret' }, receive, endpoints: { authority: entra.url, ...endpoints[via] } };
        return [via, h.runtime({ [CORPUS_PROFILE.name]: profile }, { CORPUS_APP_SECRET: SECRET })] as const;
      }),
    );
    await Promise.all(
      READERS.map(async (via) => {
        const r = run(via);
        r.first = await pollMailbox(runtimes.get(via)!, CORPUS_PROFILE.name);
        r.afterFirst = r.harness.webhook.received.length;
        r.second = await pollMailbox(runtimes.get(via)!, CORPUS_PROFILE.name);
      }),
    );
  });

  after(async () => {
    await Promise.all([imap?.stop(), pop3?.stop(), graph?.stop(), entra.stop(), ...[...runs.values()].map((r) => r.harness.stop())]);
  });

  /** A reader's delivered JSON by corpus name (matched on the stable id the direct parse gives). */
  function deliveredBy(via: Via): Map<string, DeliveredMessage> {
    const byId = new Map(run(via).harness.webhook.accepted<DeliveredMessage>().map((m) => [m.id, m]));
    return new Map(wellFormed.flatMap((m) => {
      const found = byId.get(oracle.get(m.name)!.id);
      return found ? [[m.name, found] as const] : [];
    }));
  }

  /**
   * The JSON without what may differ between readers: provider ids (comparable), and where a
   * large attachment's blob landed, which is replaced by its content read back from the blob.
   */
  async function normalized(via: Via, message: DeliveredMessage): Promise<ReturnType<typeof comparable>> {
    const payloads = await run(via).harness.state.account.container(STATE_NAMES.payloads);
    const attachments = await Promise.all(
      message.attachments.map(async ({ blob, ...attachment }) => {
        if (blob === undefined) return attachment;
        assert.equal(blob.container, STATE_NAMES.payloads);
        return { ...attachment, content: (await payloads.getBlockBlobClient(blob.name).downloadToBuffer()).toString('base64') };
      }),
    );
    return comparable({ ...message, attachments });
  }

  it('every reader completes its poll: 49 delivered, the malformed one dead-lettered, nothing filtered or duplicated', () => {
    for (const via of READERS) {
      const first = run(via).first!;
      assert.deepEqual(
        { status: first.status, delivered: first.delivered, deadLettered: first.deadLettered, filtered: first.filtered, duplicates: first.duplicates },
        { status: 'completed', delivered: 49, deadLettered: 1, filtered: 0, duplicates: 0 },
        `${via}: ${JSON.stringify(first.error)}`,
      );
    }
  });

  it('every well-formed message is delivered exactly once per reader, signed, with its stable id in X-Mail-Id', () => {
    const expectedIds = wellFormed.map((m) => oracle.get(m.name)!.id).sort();
    assert.equal(new Set(expectedIds).size, 49, 'the corpus has 49 distinct stable ids');
    for (const via of READERS) {
      const hooks = run(via).harness.webhook.received.slice(0, run(via).afterFirst);
      assert.equal(hooks.length, 49, `${via}: one request per message, no retries`);
      for (const hook of hooks) {
        assert.equal(hook.status, 200);
        assert.ok(WebhookReceiverPeer.verify(hook, HOOK_SECRET), `${via}: the signature verifies`);
        assert.equal(hook.headers['x-mail-id'], (JSON.parse(hook.body) as DeliveredMessage).id);
      }
      const ids = run(via).harness.webhook.accepted<DeliveredMessage>().map((m) => m.id);
      assert.deepEqual([...ids].sort(), expectedIds, `${via}: exactly the well-formed messages, once each`);
      assert.ok(run(via).harness.webhook.accepted<DeliveredMessage>().every((m) => m.provider.via === via));
    }
  });

  it('for each message the JSON from IMAP, POP3, Graph and the file inbox is deep-equal apart from provider ids, and equals parsing the stored bytes', async () => {
    const delivered = new Map(READERS.map((via) => [via, deliveredBy(via)]));
    for (const via of READERS) {
      const blobs = [...delivered.get(via)!.values()].flatMap((m) => m.attachments.filter((a) => a.blob !== undefined).map((a) => a.filename));
      assert.deepEqual(blobs, ['capture.pcap'], `${via}: the 300 KiB attachment goes to a blob, the rest inline`);
    }
    for (const m of wellFormed) {
      const expected = comparable(oracle.get(m.name)!);
      for (const via of READERS) {
        const message = delivered.get(via)!.get(m.name);
        assert.ok(message, `${via} delivered ${m.name}`);
        assert.deepEqual(await normalized(via, message), expected, `${via}: ${m.name}`);
      }
    }
  });

  it('every reader hands the parser the message as its server holds it: the stored bytes, over POP3 with bare LF line ends sent as CRLF', () => {
    const lf = wellFormed.find((m) => m.name === 'lf-line-endings')!;
    assert.ok(crlfLines(lf.raw).length > lf.raw.length, 'the corpus has a message with bare LF line ends');
    for (const via of READERS) {
      const delivered = deliveredBy(via);
      for (const m of wellFormed) assert.equal(delivered.get(m.name)?.size, (via === 'pop3' ? crlfLines(m.raw) : m.raw).length, `${via}: ${m.name}`);
    }
  });

  it('the malformed message is dead-lettered with its raw source by every reader, and delivered by none', async () => {
    for (const via of READERS) {
      const container = await run(via).harness.state.account.container(STATE_NAMES.deadLetter);
      const names: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: `${CORPUS_PROFILE.name}/` })) names.push(blob.name);
      assert.equal(names.length, 2, `${via}: one source and one record: ${names.join(', ')}`);
      const eml = names.find((n) => n.endsWith('.eml'));
      const json = names.find((n) => n.endsWith('.json'));
      assert.ok(eml && json, `${via}: ${names.join(', ')}`);
      assert.deepEqual(await container.getBlockBlobClient(eml).downloadToBuffer(), malformed.raw, `${via}: the raw source, byte for byte`);
      const record = JSON.parse((await container.getBlockBlobClient(json).downloadToBuffer()).toString()) as { error: { code: string } };
      assert.equal(record.error.code, 'EPARSE', via);
      const bodies = run(via).harness.webhook.received.map((r) => r.body);
      assert.ok(!bodies.some((b) => b.includes('not an e-mail message')), `${via}: never delivered`);
    }
  });

  it('autoGenerated is true for exactly the robot messages, from every reader', () => {
    assert.deepEqual(wellFormed.filter((m) => m.expect.autoGenerated === true).map((m) => m.name).sort(), [...ROBOTS].sort(), 'the corpus names its robots');
    for (const via of READERS) {
      const robots = [...deliveredBy(via)].filter(([, message]) => message.autoGenerated).map(([name]) => name);
      assert.deepEqual(robots.sort(), [...ROBOTS].sort(), via);
    }
  });

  it('UTF-8, ISO-8859-1, windows-1252, ISO-2022-JP and KOI8-R subjects, names and bodies decode to the same text through every reader', () => {
    for (const name of CHARSETS) {
      const m = wellFormed.find((c) => c.name === name)!;
      for (const via of READERS) {
        const message = deliveredBy(via).get(name);
        assert.ok(message, `${via} delivered ${name}`);
        assert.equal(message.subject, m.expect.subject, `${via}: ${name} subject`);
        for (const part of m.expect.text ?? []) assert.ok(message.text?.includes(part), `${via}: ${name} text has ${part}: ${JSON.stringify(message.text)}`);
        if (m.expect.fromName !== undefined) assert.equal(message.from?.name, m.expect.fromName, `${via}: ${name} sender name`);
        assert.deepEqual([message.subject, message.text, message.from], [oracle.get(name)!.subject, oracle.get(name)!.text, oracle.get(name)!.from], `${via}: ${name}`);
      }
    }
  });

  it('a second poll delivers nothing new and dead-letters nothing again', () => {
    for (const via of READERS) {
      const r = run(via);
      assert.deepEqual([r.second!.status, r.second!.delivered, r.second!.deadLettered], ['completed', 0, 0], `${via}: ${JSON.stringify(r.second)}`);
      assert.equal(r.harness.webhook.received.length, r.afterFirst, `${via}: no webhook request in the second poll`);
    }
  });

});
