import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { simpleParser } from 'mailparser';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { processQueuedSend } from '../../shared/send/queuedSend.js';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { capturingLogger } from '../support/receiveHarness.js';
import { MAILBOX, SendHarness } from '../support/sendHarness.js';

const APP = { tenantId: 'contoso-tenant', clientId: 'outcome-app', secret: `outcome-secret-${randomUUID()}` };
const SENT_FOLDER = 'Sent Items';

describe('a send whose outcome is unknown is looked up before it is sent again (workers killed after the provider accepted, Azurite, Graph, SMTP and IMAP peers)', () => {
  const h = SendHarness.forSuite();
  const imap = new ImapPeer(h.entra, { mailbox: MAILBOX, sentFolder: SENT_FOLDER });
  let runtime: MailRuntime | undefined;

  before(async () => {
    await imap.start();
    h.entra.register({ ...APP });
  });
  after(() => imap.stop());
  afterEach(async () => {
    h.smtp.onAccepted = undefined;
    h.smtp.beforeDataReply = undefined;
    h.smtp.failures = {};
    h.smtp.saveSentCopy = undefined;
    h.graph.onAccepted = undefined;
    h.graph.sentItemsLag = 0;
    h.graph.clearFaults();
    await runtime?.close();
    runtime = undefined;
  });

  /**
   * The app's settings for four profiles of one mailbox: Graph; SMTP that looks in the Sent folder
   * over IMAP; SMTP that cannot look, at most once (the default) and at least once.
   */
  function settings(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const profile = (send: Record<string, unknown>) => ({
      mailbox: MAILBOX,
      tenantId: APP.tenantId,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'outcome-app-secret' },
      // The suite sends more than Exchange's 30 a minute from one mailbox; the pacer is not what it is about.
      send: { allowedFrom: [MAILBOX], ratePerMinute: 6000, ...send },
      endpoints: { authority: h.entra.url, smtp: h.smtp.endpoint, graph: h.graph.url, imap: imap.endpoint },
    });
    const profiles = {
      graph: profile({ via: 'graph' }),
      smtpImap: profile({ via: 'smtp', lookupSent: 'imap' }),
      smtpAtMostOnce: profile({ via: 'smtp' }),
      smtpAtLeastOnce: profile({ via: 'smtp', unknownOutcome: 'atLeastOnce' }),
    };
    return { AzureWebJobsStorage: h.azurite.connectionString, MAIL_PROFILES: JSON.stringify({ profiles }), OUTCOME_APP_SECRET: APP.secret, ...extra };
  }

  function useRuntime(extra: NodeJS.ProcessEnv = {}): MailRuntime {
    runtime = new MailRuntime({ env: settings(extra), logger: capturingLogger(h.logs) });
    setRuntime(runtime);
    return runtime;
  }

  const message = (profile: string) => ({ profile, to: 'alice@example.com', subject: `Ticket ${randomBytes(4).toString('hex')}`, text: 'The printer is on fire.' });

  /** Exchange saves what the mailbox submits over SMTP in its Sent Items: the IMAP peer's Sent folder gets each accepted message. */
  function smtpSavesToSentFolder(): void {
    h.smtp.saveSentCopy = (raw) => imap.append(SENT_FOLDER, raw);
  }

  /** Queues a message and takes its queue message off the queue, as the host hands it to a worker. */
  async function queued(profile: string): Promise<{ id: string; messageId: string }> {
    const accepted = await h.post(message(profile), { query: '?mode=queued' });
    assert.equal(accepted.status, 202, accepted.raw);
    const queue = await h.state.account.queue(SEND_QUEUE);
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 1 });
    assert.equal(receivedMessageItems.length, 1);
    return { id: String(accepted.body.id), messageId: receivedMessageItems[0]!.messageId };
  }

  /**
   * Runs the job in a child process and kills it (SIGKILL) the moment the peer has accepted the
   * message and before the peer answers: the provider has it, the process never learns so.
   */
  async function killedAfterAccept(peer: 'smtp' | 'graph', job: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<void> {
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'support', 'sendProcess.js'), JSON.stringify(job)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    const kill = async () => {
      child.kill('SIGKILL');
      await exited;
    };
    if (peer === 'smtp') h.smtp.onAccepted = kill;
    else h.graph.onAccepted = kill;
    assert.equal(await exited, 'SIGKILL', `the send process ended by itself: ${output}`);
    h.smtp.onAccepted = undefined;
    h.graph.onAccepted = undefined;
  }

  /** A queued send whose worker is killed once the peer accepted it; then the same queue message, redelivered, goes to a worker here. */
  async function crashThenTakeOver(peer: 'smtp' | 'graph', profile: string): Promise<{ id: string; outcome: string; status: Record<string, unknown>; raw: string }> {
    const rt = runtime ?? useRuntime();
    const { id, messageId } = await queued(profile);
    await killedAfterAccept(peer, { kind: 'queued', item: { id }, messageId }, settings());
    assert.equal(peer === 'smtp' ? h.smtp.messages.length : h.graph.sent.length, 1, 'the provider has it');
    assert.equal((await h.status(id)).body.status, 'sending', 'the row still says what the dead worker wrote');
    const outcome = await processQueuedSend(rt, h.state, { id }, { messageId, dequeueCount: 2 });
    const status = await h.status(id);
    return { id, outcome, status: status.body, raw: status.raw };
  }

  it('Graph: the worker dies after Graph accepted; the next one finds the Message-ID in Sent Items (not filed at the first two lookups) and marks it sent: one message', async () => {
    h.graph.sentItemsLag = 2;
    const { outcome, status, raw } = await crashThenTakeOver('graph', 'graph');
    assert.equal(outcome, 'sent');
    assert.equal(status.status, 'sent', raw);
    assert.equal(status.reconciled, 'foundInSentItems');
    assert.equal(status.messageId, h.graph.sent[0]!.internetMessageId);
    assert.equal(status.attempts, 1, 'the lookup is no attempt');
    assert.equal(h.graph.sent.length, 1, 'not sent again');
    const lookups = h.graph.apiRequests('GET', /\/mailFolders\/sentitems\/messages$/);
    assert.equal(lookups.length, 3, 'looked again while the copy was not filed yet');
    assert.equal(lookups[0]!.query.get('$filter'), `internetMessageId eq '${h.graph.sent[0]!.internetMessageId}'`);
  });

  it('SMTP with IMAP: the worker dies after the server accepted (250 never read); the next one finds it in the \\Sent folder (UID SEARCH HEADER Message-ID) and marks it sent: one message', async () => {
    smtpSavesToSentFolder();
    const { outcome, status, raw } = await crashThenTakeOver('smtp', 'smtpImap');
    assert.equal(outcome, 'sent');
    assert.equal(status.status, 'sent', raw);
    assert.equal(status.reconciled, 'foundInSentItems');
    assert.equal(status.messageId, (await simpleParser(h.smtp.messages[0]!.raw)).messageId);
    assert.equal(h.smtp.messages.length, 1, 'not sent again');
    assert.ok(imap.commands.some((c) => /UID SEARCH HEADER "?Message-ID"? /i.test(c) && c.includes(String(status.messageId))), imap.commands.join('\n'));
  });

  it('SMTP with IMAP: a worker that died after its claim but before the server took anything: not found in the Sent folder, so sent once (reconciled notFound)', async () => {
    const rt = useRuntime();
    smtpSavesToSentFolder();
    const { id, messageId } = await queued('smtpImap');
    // What the dead worker left: the claim, and nothing at the server.
    const stored = await h.state.statuses.get(id);
    await h.state.statuses.replace({ ...stored!.record, status: 'sending', attempts: 1, sendingUntil: new Date(Date.now() + 600_000).toISOString(), sendingBy: messageId }, stored!.etag);

    assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId, dequeueCount: 2 }), 'sent');
    const status = await h.status(id);
    assert.equal(status.body.status, 'sent', status.raw);
    assert.equal(status.body.reconciled, 'notFound');
    assert.equal(status.body.attempts, 2);
    assert.equal(h.smtp.messages.length, 1);
  });

  it('SMTP that cannot look, at most once (the default): the worker dies after the server accepted; the send becomes "unknown" and is never sent again', async () => {
    const { id, outcome, status, raw } = await crashThenTakeOver('smtp', 'smtpAtMostOnce');
    assert.equal(outcome, 'unknown');
    assert.equal(status.status, 'unknown', raw);
    assert.equal(status.reconciled, 'notChecked');
    assert.equal(await processQueuedSend(runtime!, h.state, { id }, { messageId: randomUUID() }), 'skipped', 'a later delivery does nothing');
    assert.equal(h.smtp.messages.length, 1, 'sent at most once');
  });

  it('SMTP that cannot look, at least once (send.unknownOutcome): the worker dies after the server accepted; the next one sends it again with the same Message-ID', async () => {
    const { outcome, status, raw } = await crashThenTakeOver('smtp', 'smtpAtLeastOnce');
    assert.equal(outcome, 'sent');
    assert.equal(status.status, 'sent', raw);
    assert.equal(status.reconciled, 'notChecked');
    assert.equal(status.attempts, 2);
    assert.equal(h.smtp.messages.length, 2);
    const [first, second] = await Promise.all(h.smtp.messages.map((m) => simpleParser(m.raw)));
    assert.equal(first!.messageId, second!.messageId, 'the same Message-ID, so a recipient can tell the repeat');
  });

  it('Graph answers 503 after it took the sendMail: the SDK does not resend it blindly; the retry finds it in Sent Items: one message', async () => {
    const rt = useRuntime();
    h.graph.sent.splice(0);
    const before = h.graph.apiRequests('POST', /\/sendMail$/).length;
    h.graph.inject({ status: 503, code: 'ServiceUnavailable', after: true, times: 1, match: /^POST .*\/sendMail$/ });
    const { id, messageId } = await queued('graph');
    assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId }), 'retrying');
    assert.equal(h.graph.apiRequests('POST', /\/sendMail$/).length - before, 1, 'one sendMail request: the 503 is not retried below the send');
    assert.equal(h.graph.sent.length, 1);
    const retrying = await h.status(id);
    assert.equal((retrying.body.lastError as { code: string }).code, 'EUNAVAILABLE', retrying.raw);

    assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId: randomUUID() }), 'sent');
    const status = await h.status(id);
    assert.equal(status.body.reconciled, 'foundInSentItems', status.raw);
    assert.equal(h.graph.sent.length, 1, 'not sent again');
  });

  it('Graph answers 429 to a sendMail: refused before it was carried out, so the SDK retries it at once (Retry-After) and it is sent once', async () => {
    const rt = useRuntime();
    h.graph.sent.splice(0);
    const before = h.graph.apiRequests('POST', /\/sendMail$/).length;
    h.graph.inject({ status: 429, code: 'ApplicationThrottled', retryAfter: 1, times: 1, match: /^POST .*\/sendMail$/ });
    const { id, messageId } = await queued('graph');
    assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId }), 'sent');
    assert.equal(h.graph.apiRequests('POST', /\/sendMail$/).length - before, 2);
    assert.equal(h.graph.sent.length, 1);
  });

  it('an attempt that fails for good after another worker took the send over (past its hold) and sent it leaves the row "sent"', async () => {
    const rt = useRuntime();
    const { id, messageId } = await queued('smtpAtMostOnce');
    // While this attempt's message is at the server, another worker takes the send over and sends it; then the server refuses this copy for good.
    h.smtp.beforeDataReply = async () => {
      h.smtp.beforeDataReply = undefined;
      const stored = await h.state.statuses.get(id);
      await h.state.statuses.replace({ ...stored!.record, status: 'sent', messageId: '<other-worker@contoso.com>', sendingUntil: undefined, sendingBy: undefined }, stored!.etag);
      h.smtp.failures = { data: { code: 550, text: '5.7.1 Refused', times: 1 } };
    };
    assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId }), 'skipped');
    const status = await h.status(id);
    assert.equal(status.body.status, 'sent', status.raw);
    assert.equal(status.body.messageId, '<other-worker@contoso.com>');
    assert.ok(h.logs.some((l) => l.includes('another worker took the send over')), 'the lost race is logged');
  });

  it('the connection drops after the DATA terminator, the server having queued the message: the retry looks first (IMAP: found, sent once); without IMAP, at most once: "unknown"', async () => {
    const rt = useRuntime();
    smtpSavesToSentFolder();
    for (const [profile, expected] of [['smtpImap', 'sent'], ['smtpAtMostOnce', 'unknown']] as const) {
      h.smtp.messages.splice(0);
      h.smtp.failures = { dropAfterData: { times: 1 } };
      const { id, messageId } = await queued(profile);
      assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId }), 'retrying');
      const retrying = await h.status(id);
      assert.equal(retrying.body.status, 'queued', retrying.raw);
      assert.equal((retrying.body.lastError as { code: string }).code, 'ECONNECTION');
      assert.equal(h.smtp.messages.length, 1, 'the server has it');

      assert.equal(await processQueuedSend(rt, h.state, { id }, { messageId: randomUUID() }), expected);
      const settled = await h.status(id);
      assert.equal(settled.body.status, expected, settled.raw);
      assert.equal(settled.body.reconciled, profile === 'smtpImap' ? 'foundInSentItems' : 'notChecked');
      assert.equal(h.smtp.messages.length, 1, `${profile}: not sent again`);
    }
  });

  it('sync with an Idempotency-Key, the request killed after the server accepted: a repeat within SEND_SYNC_HOLD_SECONDS answers 409, one after it finds the message and answers 200 with the first id and Message-ID', async () => {
    const hold = { SEND_SYNC_HOLD_SECONDS: '10' };
    useRuntime(hold);
    smtpSavesToSentFolder();
    const body = message('smtpImap');
    const key = randomUUID();
    const firstId = randomUUID();
    await killedAfterAccept('smtp', { kind: 'sync', id: firstId, body, key }, settings(hold));
    const sentMessageId = (await simpleParser(h.smtp.messages[0]!.raw)).messageId;

    const early = await h.post(body, { headers: { 'idempotency-key': key } });
    assert.equal(early.status, 409, early.raw);
    assert.equal(early.body.code, 'EIDEMPOTENCY_IN_PROGRESS');

    await untilHoldEnds(firstId);
    const repeat = await h.post(body, { headers: { 'idempotency-key': key } });
    assert.equal(repeat.status, 200, repeat.raw);
    assert.deepEqual(repeat.body, { id: firstId, status: 'sent', messageId: sentMessageId });
    assert.equal(repeat.headers['idempotent-replayed'], 'true');
    assert.equal(h.smtp.messages.length, 1, 'not sent again');
    const status = await h.status(firstId);
    assert.equal(status.body.status, 'sent');
    assert.equal(status.body.reconciled, 'foundInSentItems');
    const again = await h.post(body, { headers: { 'idempotency-key': key } });
    assert.deepEqual(again.body, repeat.body, 'every later repeat answers the same');
  });

  it('sync with an Idempotency-Key that cannot be looked up (at most once): after the hold a repeat answers 502 ESEND_UNKNOWN and nothing is sent again', async () => {
    const hold = { SEND_SYNC_HOLD_SECONDS: '10' };
    useRuntime(hold);
    const body = message('smtpAtMostOnce');
    const key = randomUUID();
    const firstId = randomUUID();
    await killedAfterAccept('smtp', { kind: 'sync', id: firstId, body, key }, settings(hold));

    await untilHoldEnds(firstId);
    const repeat = await h.post(body, { headers: { 'idempotency-key': key } });
    assert.equal(repeat.status, 502, repeat.raw);
    assert.equal(repeat.body.code, 'ESEND_UNKNOWN');
    assert.equal((await h.status(firstId)).body.status, 'unknown');
    assert.equal((await h.post(body, { headers: { 'idempotency-key': key } })).body.code, 'ESEND_UNKNOWN');
    assert.equal(h.smtp.messages.length, 1, 'sent at most once');
  });

  /** Waits until the sync attempt's hold, as its row records it, is over. */
  async function untilHoldEnds(id: string): Promise<void> {
    const stored = await h.state.statuses.get(id);
    assert.ok(stored?.record.sendingUntil, 'the sync attempt holds its row');
    const wait = Date.parse(stored.record.sendingUntil) - Date.now();
    if (wait > 0) await sleep(wait + 50);
  }
});
