import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { problemResponse } from '../../shared/http/problem.js';
import { createLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore } from '../../shared/secrets/store.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { mailErrorFrom } from '../support/mailError.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';

const TENANT = 'contoso-tenant';
const APP = { tenantId: TENANT, clientId: 'graph-mail-app', secret: 'graph-client-secret-value-1' };
const MAILBOX = 'support@contoso.com';
const SEND_AS = 'news@contoso.com';

// What every sender does (recipients, bodies, attachments, Message-ID, Bcc hidden, EAUTH, renewal,
// ECONNECTION) is the MailSender contract's: graph.contract.test.ts. Here: Graph's own.
describe('sending over Microsoft Graph: the real Graph client and @azure/identity against loopback stand-ins', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  let logLines: string[] = [];

  before(async () => {
    await entra.start();
    await graph.start();
    entra.register({ ...APP });
    graph.addMailbox(MAILBOX);
    graph.grantSendAs(MAILBOX, SEND_AS);
  });
  after(async () => {
    await graph.stop();
    await entra.stop();
  });
  beforeEach(() => {
    graph.clearFaults();
    logLines = [];
  });

  function runtime(overrides: { mailbox?: string; saveToSentItems?: boolean } = {}): MailRuntime {
    const env = {
      MAIL_PROFILES: JSON.stringify({
        profiles: {
          support: {
            mailbox: overrides.mailbox ?? MAILBOX,
            tenantId: TENANT,
            clientId: APP.clientId,
            auth: { type: 'clientSecret', secret: 'support-client-secret' },
            send: { via: 'graph', allowedFrom: [overrides.mailbox ?? MAILBOX, SEND_AS], saveToSentItems: overrides.saveToSentItems ?? true },
            endpoints: { authority: entra.url, graph: graph.url },
          },
        },
      }),
      SUPPORT_CLIENT_SECRET: APP.secret,
    };
    const sink = { log: (line: unknown) => logLines.push(String(line)), warn: (line: unknown) => logLines.push(String(line)), error: (line: unknown) => logLines.push(String(line)) };
    return new MailRuntime({ env, secrets: new CachedSecretStore(new EnvironmentSecretStore(env)), logger: createLogger(sink) });
  }

  it('a message goes out in one POST sendMail with Prefer IdType="ImmutableId" and saveToSentItems, and from is left to Graph when it is the mailbox', async () => {
    const sentBefore = graph.sent.length;
    const outcome = await sendMail(runtime(), { to: 'ann@example.com', subject: 'hello', html: '<p>hi</p>' });
    assert.equal(graph.sent.length, sentBefore + 1);
    const sent = graph.sent.at(-1)!;
    assert.equal(sent.via, 'sendMail');
    assert.equal(sent.mailbox, MAILBOX);
    assert.equal(sent.saveToSentItems, true);
    assert.equal(sent.internetMessageId, outcome.messageId);
    assert.equal(sent.message.from, undefined, 'from is left to Graph when it is the mailbox');
    const request = graph.apiRequests('POST', /\/sendMail$/).at(-1)!;
    assert.equal(request.path, `/v1.0/users/${encodeURIComponent(MAILBOX)}/sendMail`);
    assert.equal(request.headers.prefer, 'IdType="ImmutableId"');
    assert.equal(request.status, 202);
  });

  it('an allowed from address is sent as `from`, and saveToSentItems: false reaches sendMail', async () => {
    await sendMail(runtime({ saveToSentItems: false }), { from: `Newsletter <${SEND_AS}>`, to: 'ann@example.com', subject: 'News', text: 'hello' });
    const sent = graph.sent.at(-1)!;
    assert.deepEqual(sent.message.from, { emailAddress: { name: 'Newsletter', address: SEND_AS } });
    assert.deepEqual(sent.message.body, { contentType: 'text', content: 'hello' });
    assert.equal(sent.saveToSentItems, false);
  });

  it('a 5 MB attachment goes through a draft and an upload session, in well-formed chunks without an Authorization header', async () => {
    const big = randomBytes(5 * 1024 * 1024);
    const small = randomBytes(1000);
    const chunksBefore = graph.uploadChunks.length;
    const outcome = await sendMail(runtime(), {
      to: 'ann@example.com',
      subject: 'Large file',
      html: '<p>see attached</p>',
      attachments: [
        { filename: 'small.txt', contentType: 'text/plain', content: small.toString('base64') },
        { filename: 'video.bin', contentType: 'application/octet-stream', content: big.toString('base64') },
      ],
    });
    const sent = graph.sent.at(-1)!;
    assert.equal(sent.via, 'draft');
    assert.equal(sent.internetMessageId, outcome.messageId);
    assert.equal(graph.drafts.size, 0, 'the draft was sent, none is left behind');
    const draftCreate = graph.apiRequests('POST', /\/messages$/).at(-1)!;
    assert.equal(draftCreate.status, 201);
    assert.deepEqual(sent.attachments.map((a) => [a.name, a.via]), [['small.txt', 'message'], ['video.bin', 'uploadSession']]);
    assert.ok(sent.attachments[1]!.bytes.equals(big), 'bytes reassembled from the chunks are identical');
    assert.ok(sent.attachments[0]!.bytes.equals(small));

    const chunks = graph.uploadChunks.slice(chunksBefore);
    assert.ok(chunks.length >= 2, `expected several chunks, got ${chunks.length}`);
    let offset = 0;
    chunks.forEach((chunk, index) => {
      assert.equal(chunk.authorization, false, 'no Authorization header on the upload PUT');
      assert.equal(chunk.start, offset, 'chunks are contiguous');
      assert.equal(chunk.total, big.length);
      assert.equal(chunk.end - chunk.start + 1, chunk.length);
      assert.ok(chunk.length <= 4 * 1024 * 1024);
      if (index < chunks.length - 1) {
        assert.equal(chunk.length % (320 * 1024), 0, 'every chunk but the last is a multiple of 320 KiB');
        assert.equal(chunk.status, 200);
      } else {
        assert.equal(chunk.status, 201);
      }
      offset += chunk.length;
    });
    assert.equal(offset, big.length);
    const session = graph.apiRequests('POST', /\/attachments\/createUploadSession$/).at(-1)!;
    assert.equal(session.status, 201);
    assert.equal(graph.apiRequests('POST', /\/send$/).at(-1)!.status, 202);
  });

  it('429 with Retry-After is waited out, then the send succeeds', async () => {
    graph.inject({ status: 429, code: 'TooManyRequests', message: 'Please retry again later.', retryAfter: 1, times: 2, match: /\/sendMail$/ });
    const before = graph.apiRequests('POST', /\/sendMail$/).length;
    await sendMail(runtime(), { to: 'ann@example.com', subject: 'throttled', text: 'x' });
    const attempts = graph.apiRequests('POST', /\/sendMail$/).slice(before);
    assert.deepEqual(attempts.map((a) => a.status), [429, 429, 202]);
    for (let i = 1; i < attempts.length; i++) {
      const waited = attempts[i]!.receivedAt - attempts[i - 1]!.respondedAt;
      // Node timers run on libuv's millisecond loop clock: allow that one millisecond of rounding.
      assert.ok(waited >= 1000 - 1, `retry ${i} came ${waited.toFixed(1)} ms after the 429, before Retry-After: 1 elapsed`);
    }
    assert.equal(attempts[2]!.headers['retry-attempt'], '2');
  });

  it('a 429 that persists beyond the retries ends as a 429 problem carrying Retry-After', async () => {
    graph.inject({ status: 429, code: 'TooManyRequests', retryAfter: 1, times: 100, match: /\/sendMail$/ });
    const before = graph.apiRequests('POST', /\/sendMail$/).length;
    const error = await mailErrorFrom(sendMail(runtime(), { to: 'ann@example.com', subject: 'throttled', text: 'x' }));
    assert.equal(error.code, 'ETHROTTLED');
    assert.equal(error.retryAfter, 1);
    assert.equal(error.providerCode, 'TooManyRequests');
    assert.equal(graph.apiRequests('POST', /\/sendMail$/).length - before, 4, 'one request and three retries');
    const response = problemResponse(error);
    assert.equal(response.status, 429);
    assert.equal((response.headers as Record<string, string>)['Retry-After'], '1');
  });

  it('Graph error codes become our codes, each with a hint', async () => {
    const cases: Array<{ fault: { status: number; code: string; message: string; retryAfter?: number }; expect: string; hint: RegExp; from?: string }> = [
      { fault: { status: 403, code: 'ErrorSendAsDenied', message: 'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.' }, expect: 'ESEND_DENIED', hint: /Send As/ },
      { fault: { status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' }, expect: 'EAUTH', hint: /Mail\.Send.*admin consent.*Application Access Policy/ },
      { fault: { status: 404, code: 'MailboxNotEnabledForRESTAPI', message: 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.' }, expect: 'EMAILBOX', hint: /on-premises/ },
      { fault: { status: 400, code: 'ErrorInvalidRecipients', message: "At least one recipient isn't valid." }, expect: 'EREJECTED', hint: /recipient/ },
      { fault: { status: 413, code: 'ErrorMessageSizeExceeded', message: 'The message exceeds the maximum supported size.' }, expect: 'ETOO_LARGE', hint: /35 MB/ },
      { fault: { status: 503, code: 'ServiceUnavailable', message: 'Service Unavailable', retryAfter: 1 }, expect: 'EUNAVAILABLE', hint: /Retry-After/ },
    ];
    for (const c of cases) {
      graph.clearFaults();
      graph.inject({ ...c.fault, times: 100, match: /\/sendMail$/ });
      const error = await mailErrorFrom(sendMail(runtime(), { to: 'ann@example.com', subject: c.fault.code, text: 'x' }));
      assert.equal(error.code, c.expect, `${c.fault.code} -> ${error.code}`);
      assert.equal(error.providerCode, c.fault.code);
      assert.match(error.hint ?? '', c.hint, c.fault.code);
    }
    graph.clearFaults();
  });

  it('a from address the mailbox has no Send As rights on is refused as ESEND_DENIED; an unknown mailbox is EMAILBOX', async () => {
    graph.addMailbox('other@contoso.com');
    const denied = await mailErrorFrom(sendMail(runtime({ mailbox: 'other@contoso.com' }), { from: SEND_AS, to: 'ann@example.com', subject: 's', text: 'x' }));
    assert.equal(denied.code, 'ESEND_DENIED');
    assert.equal(denied.providerCode, 'ErrorSendAsDenied');
    const unknown = await mailErrorFrom(sendMail(runtime({ mailbox: 'nobody@contoso.com' }), { to: 'ann@example.com', subject: 's', text: 'x' }));
    assert.equal(unknown.code, 'EMAILBOX');
    assert.equal(unknown.providerCode, 'ErrorInvalidUser');
    assert.match(unknown.hint ?? '', /nobody@contoso\.com/);
  });

  it('100 sends cost one token request, and no token or secret appears in any log line', async () => {
    const env = runtime();
    const before = entra.tokenRequests().length;
    const sentBefore = graph.sent.length;
    await Promise.all(Array.from({ length: 100 }, (_, i) => sendMail(env, { to: 'ann@example.com', subject: `bulk ${i}`, text: 'x' })));
    assert.equal(graph.sent.length - sentBefore, 100);
    assert.equal(entra.tokenRequests().length - before, 1);
    graph.inject({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied.', times: 2, match: /\/sendMail$/ });
    await mailErrorFrom(sendMail(env, { to: 'ann@example.com', subject: 'denied', text: 'x' }));
    assert.ok(logLines.length >= 101);
    const secrets = [APP.secret, ...entra.issued.keys()];
    for (const line of logLines) for (const secret of secrets) assert.ok(!line.includes(secret), 'a log line contains a token or the secret');
  });
});
