/**
 * The MailSender contract: one suite, written once, run against every sender with its
 * loopback peer (test/transports/<adapter>.contract.test.ts), as unstorage runs one
 * `testDriver` over every driver. An adapter declares what it can do; a case whose ability
 * an adapter lacks is not registered for it (never skipped, so never counted as passed).
 *
 * What each adapter lacks, and why:
 * - Graph: no ETLS case (the Graph SDK reports a failed TLS handshake like any request
 *   without an answer: ECONNECTION). When both text and html are given only the html reaches
 *   Graph (its message resource holds one body; Exchange derives the plain-text part).
 * - SMTP: has every case.
 * - file: no login, tokens, TLS or network (an outbox folder), so no EAUTH, renewal, ETLS or
 *   ECONNECTION case; no "Bcc is never shown" case: the outbox copy keeps Bcc by design
 *   (FileSender composes with keepBcc), which the message case checks instead.
 * Throttling is not a contract case: Graph waits Retry-After out and retries inside the send,
 * SMTP answers ETHROTTLED at once; each transport's own tests cover its behaviour.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { withAuthRetry } from '../../shared/identity/tokenProvider.js';
import type { Address } from '../../shared/mail/address.js';
import type { OutgoingMessage } from '../../shared/mail/outgoing.js';
import type { MailSender } from '../../shared/transports/types.js';
import { mailErrorFrom } from '../support/mailError.js';
import { assertNoTokenLeaked, withFixture, type TokenSession } from './fixture.js';

export interface ReceivedAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
  contentId?: string;
}

/** A message as the peer received it, normalized so that every transport compares alike. */
export interface ReceivedMail {
  from: string;
  to: Address[];
  cc: Address[];
  /** Whom it went to besides To and Cc: the SMTP envelope, Graph's bccRecipients, the outbox copy's Bcc header. */
  bcc: string[];
  replyTo: Address[];
  subject: string;
  text?: string;
  html?: string;
  importance: 'low' | 'normal' | 'high';
  /** Custom X- headers, names in lower case. */
  headers: Record<string, string>;
  attachments: ReceivedAttachment[];
  messageId: string;
  /** All a To or Cc recipient gets to see: the MIME SMTP delivered, the Graph message resource without bccRecipients. */
  shownToRecipients?: string;
}

export interface SenderFixture {
  sender: MailSender;
  /** What the peer received from this fixture's sender, in order. */
  received(): Promise<ReceivedMail[]>;
  /** What the server made of each authentication it was offered, in order (none for the file transport). */
  authentications(): Array<'accepted' | 'refused'>;
  close(): Promise<void>;
}

export interface SenderAuth<F> {
  /** The fixture's token provider (for withAuthRetry, as sendMail wraps every send), the tokens it handed out and the fixture's log lines. */
  session(fixture: F): TokenSession;
  tokenRequests(): number;
  /** A sender whose token the server refuses, what the hint must name, and the provider's code. */
  refused?: { fixture(): Promise<F>; hint: RegExp[]; providerCode: string | undefined };
  /** Makes every token issued so far invalid, as when it expired (and ends sessions opened with one). */
  expireTokens?(): Promise<void>;
}

export interface MailSenderAdapter<F extends SenderFixture = SenderFixture> {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The mailbox sent from. */
  mailbox: string;
  fixture(): Promise<F>;
  /** What reaches the provider when a message has both text and html. */
  bodies: 'both' | 'html only';
  /** Recipients get a copy without Bcc (false for the file outbox, which keeps it). */
  hidesBcc: boolean;
  auth?: SenderAuth<F>;
  /** A server that offers no TLS, or a certificate this host does not trust. */
  insecureServer?(): Promise<F>;
  /** A sender aimed at a loopback port nobody listens on. */
  unreachable?(): Promise<F>;
}

const HIDDEN = 'hidden@example.net';

function fullMessage(mailbox: string, attachments: { logo: Buffer; report: Buffer }): OutgoingMessage {
  return {
    from: { address: mailbox },
    to: [{ name: 'Alice Example', address: 'alice@example.com' }, { address: 'bob@example.com' }],
    cc: [{ name: 'Carol', address: 'carol@example.org' }],
    bcc: [{ address: HIDDEN }],
    replyTo: [{ address: 'helpdesk@contoso.com' }],
    subject: 'Quarterly report ✓ — résumé',
    text: 'See the attached report.',
    html: '<p>See the attached report.</p><img src="cid:logo@contoso">',
    importance: 'high',
    headers: { 'X-Ticket-Id': '4711' },
    attachments: [
      { filename: 'logo.png', contentType: 'image/png', content: attachments.logo, contentId: 'logo@contoso' },
      { filename: 'report.pdf', contentType: 'application/pdf', content: attachments.report },
    ],
    messageId: `<${randomUUID()}@contoso.com>`,
  };
}

function textMessage(mailbox: string, to: string, text: string): OutgoingMessage {
  return { from: { address: mailbox }, to: [{ address: to }], cc: [], bcc: [], replyTo: [], subject: 'plain', text, importance: 'normal', headers: {}, attachments: [], messageId: `<${randomUUID()}@contoso.com>` };
}

export function describeMailSender<F extends SenderFixture>(name: string, factory: () => MailSenderAdapter<F>): void {
  describe(`${name} keeps the MailSender contract`, () => {
    const adapter = factory();
    before(() => adapter.start());
    after(() => adapter.stop());

    const withSender = (body: (fixture: F) => Promise<void>) => withFixture(() => adapter.fixture(), body);

    it("a message with to, cc, bcc, reply-to, text and html, an inline image, an attachment, importance and an X- header is received with all of them, under the answer's messageId", withSender(async (f) => {
      const logo = randomBytes(300);
      const report = randomBytes(5000);
      const message = fullMessage(adapter.mailbox, { logo, report });
      const result = await f.sender.send(message);
      assert.equal(result.messageId, message.messageId);

      const received = await f.received();
      assert.equal(received.length, 1);
      const got = received[0]!;
      assert.equal(got.messageId, message.messageId);
      assert.equal(got.from.toLowerCase(), adapter.mailbox.toLowerCase());
      assert.deepEqual(got.to, message.to);
      assert.deepEqual(got.cc, message.cc);
      assert.deepEqual(got.bcc, [HIDDEN]);
      assert.deepEqual(got.replyTo, message.replyTo);
      assert.equal(got.subject, message.subject);
      assert.equal(got.html, message.html);
      assert.equal(got.text, adapter.bodies === 'both' ? message.text : undefined);
      assert.equal(got.importance, 'high');
      assert.equal(got.headers['x-ticket-id'], '4711');
      const attachments = [...got.attachments].sort((a, b) => a.filename.localeCompare(b.filename));
      assert.deepEqual(attachments, [
        { filename: 'logo.png', contentType: 'image/png', content: logo, contentId: 'logo@contoso' },
        { filename: 'report.pdf', contentType: 'application/pdf', content: report },
      ]);
    }));

    it('a text-only message is received as plain text', withSender(async (f) => {
      const message = textMessage(adapter.mailbox, 'ann@example.com', 'hello in plain text');
      await f.sender.send(message);
      const [got] = await f.received();
      assert.ok(got);
      assert.equal(got.text, 'hello in plain text');
      assert.equal(got.html, undefined);
      assert.deepEqual(got.to, [{ address: 'ann@example.com' }]);
      assert.deepEqual(got.attachments, []);
    }));

    if (adapter.hidesBcc) {
      it('a Bcc address is never shown to the To and Cc recipients', withSender(async (f) => {
        await f.sender.send(fullMessage(adapter.mailbox, { logo: randomBytes(10), report: randomBytes(10) }));
        const [got] = await f.received();
        assert.ok(got?.shownToRecipients !== undefined, 'the peer kept what the recipients see');
        assert.ok(got.shownToRecipients.includes('alice@example.com'), 'what the recipients see names the To address');
        assert.ok(!got.shownToRecipients.toLowerCase().includes(HIDDEN), 'the Bcc address must not be shown');
      }));
    }

    const auth = adapter.auth;
    const refused = auth?.refused;
    if (auth && refused) {
      it('a token the server refuses is EAUTH with a hint naming what to grant, nothing is received, and the token reaches neither the error nor the logs', withFixture(() => refused.fixture(), async (f) => {
        const error = await mailErrorFrom(f.sender.send(textMessage(adapter.mailbox, 'ann@example.com', 'x')));
        assert.equal(error.code, 'EAUTH');
        for (const pattern of refused.hint) assert.match(error.hint ?? '', pattern);
        assert.equal(error.providerCode, refused.providerCode);
        assert.deepEqual(f.authentications(), ['refused']);
        assert.deepEqual(await f.received(), []);
        assertNoTokenLeaked(auth.session(f), [error.message, error.hint ?? '']);
      }));
    }

    const expireTokens = auth?.expireTokens?.bind(auth);
    if (auth && expireTokens) {
      it('a token the server refuses once is renewed once by withAuthRetry, and the send goes through', withSender(async (f) => {
        await f.sender.send(textMessage(adapter.mailbox, 'first@example.com', 'x'));
        await expireTokens();
        const requestsBefore = auth.tokenRequests();
        const loginsBefore = f.authentications().length;

        const second = textMessage(adapter.mailbox, 'second@example.com', 'y');
        const result = await withAuthRetry(auth.session(f).deps.tokens, () => f.sender.send(second));

        assert.equal(result.messageId, second.messageId);
        assert.deepEqual(f.authentications().slice(loginsBefore), ['refused', 'accepted']);
        assert.equal(auth.tokenRequests() - requestsBefore, 1, 'exactly one new token');
        assert.deepEqual((await f.received()).map((m) => m.to.map((a) => a.address)), [['first@example.com'], ['second@example.com']]);
        const { tokensSeen } = auth.session(f);
        assert.notEqual(tokensSeen.at(-1), tokensSeen[0], 'the renewed token is a new one');
        assertNoTokenLeaked(auth.session(f));
      }));
    }

    const insecureServer = adapter.insecureServer?.bind(adapter);
    if (insecureServer) {
      it('a server without trusted TLS is ETLS, and it sees neither a login nor the message', withFixture(insecureServer, async (f) => {
        const error = await mailErrorFrom(f.sender.send(textMessage(adapter.mailbox, 'ann@example.com', 'x')));
        assert.equal(error.code, 'ETLS');
        assert.deepEqual(f.authentications(), []);
        assert.deepEqual(await f.received(), []);
      }));
    }

    const unreachable = adapter.unreachable?.bind(adapter);
    if (unreachable) {
      it('nobody listening is ECONNECTION', withFixture(unreachable, async (f) => {
        assert.equal((await mailErrorFrom(f.sender.send(textMessage(adapter.mailbox, 'ann@example.com', 'x')))).code, 'ECONNECTION');
      }));
    }
  });
}
