import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { MailError } from '../../shared/errors.js';
import { toProblem } from '../../shared/http/problem.js';
import { createLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { prepareMessage, sendMail } from '../../shared/send/sendMail.js';
import type { SendRequestInput } from '../../shared/mail/outgoing.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { mailErrorFrom } from '../support/mailError.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';

const MAILBOX = 'support@contoso.com';
const TENANT = 'contoso-tenant';
const CLIENT_ID = 'smtp-app';
const FIRST_SECRET = `first-secret-${randomBytes(8).toString('hex')}`;
const SECOND_SECRET = `second-secret-${randomBytes(8).toString('hex')}`;

// What every sender does (recipients, bodies, attachments, Message-ID, Bcc hidden, EAUTH, renewal,
// ETLS, ECONNECTION) is the MailSender contract's: smtp.contract.test.ts. Here: SMTP's own.
describe('sending over SMTP with XOAUTH2 (real nodemailer and @azure/identity against loopback peers)', () => {
  const entra = new TokenEndpointPeer();
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX] });
  const logLines: string[] = [];
  const logger = createLogger({ log: (l: unknown) => logLines.push(String(l)), warn: (l: unknown) => logLines.push(String(l)), error: (l: unknown) => logLines.push(String(l)) });
  const seenTokens = new Set<string>();
  const seenErrors: unknown[] = [];
  const runtimes: MailRuntime[] = [];

  const rememberTokens = () => [...entra.issued.keys()].forEach((t) => seenTokens.add(t));

  before(async () => {
    await entra.start();
    await smtp.start();
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: FIRST_SECRET });
  });
  afterEach(async () => {
    rememberTokens();
    smtp.failures = {};
    await Promise.all(runtimes.splice(0).map((r) => r.close()));
  });
  after(async () => {
    await smtp.stop();
    await entra.stop();
  });

  function runtime(options: { mailbox?: string; smtpEndpoint?: string } = {}): MailRuntime {
    const profiles = {
      profiles: {
        support: {
          mailbox: options.mailbox ?? MAILBOX,
          tenantId: TENANT,
          clientId: CLIENT_ID,
          auth: { type: 'clientSecret', secret: 'support-client-secret' },
          send: { via: 'smtp', allowedFrom: [options.mailbox ?? MAILBOX] },
          endpoints: { authority: entra.url, smtp: options.smtpEndpoint ?? smtp.endpoint },
        },
      },
    };
    const r = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), SUPPORT_CLIENT_SECRET: entra.apps.get(CLIENT_ID)!.secret! }, logger });
    runtimes.push(r);
    return r;
  }

  async function sendExpectingError(r: MailRuntime, body: SendRequestInput): Promise<MailError> {
    const error = await mailErrorFrom(sendMail(r, body));
    seenErrors.push(error);
    return error;
  }

  const simple = (to = 'alice@example.com'): SendRequestInput => ({ to, subject: 'hello', text: 'hi' });

  it('the session authenticates with XOAUTH2 as the mailbox, for the app; the envelope is from the mailbox to every recipient; importance travels as Importance: High', async () => {
    const r = runtime();
    const before = smtp.messages.length;
    const authBefore = smtp.authAttempts.length;
    const outcome = await sendMail(r, { to: 'alice@example.com', cc: 'bob@example.com', bcc: 'hidden@example.com', subject: 'hello', text: 'hi', importance: 'high' });
    assert.equal(outcome.status, 'sent');
    assert.equal(outcome.via, 'smtp');
    const received = smtp.messages[before]!;
    assert.equal(received.user, MAILBOX);
    assert.equal(received.envelope.from, MAILBOX);
    assert.deepEqual([...received.envelope.to].sort(), ['alice@example.com', 'bob@example.com', 'hidden@example.com']);
    assert.match(received.raw.toString('latin1'), /^Importance: High\r$/m);
    assert.deepEqual(smtp.authAttempts.slice(authBefore).map((a) => [a.method, a.user, a.accepted, a.clientId]), [['XOAUTH2', MAILBOX, true, CLIENT_ID]]);
  });

  it("reports the server's queue id from its 250 reply as providerId", async () => {
    const r = runtime();
    const { profile, message } = prepareMessage(r, simple());
    const before = smtp.messages.length;
    const result = await r.sender(profile).send(message);
    assert.equal(result.messageId, message.messageId);
    assert.equal(result.providerId, `${smtp.messages[before]!.queueId}@smtp-peer.test`);
  });

  it('a mailbox the token may not act for is refused: one renewal and retry, then EAUTH (502)', async () => {
    const r = runtime({ mailbox: 'stranger@contoso.com' });
    const authBefore = smtp.authAttempts.length;
    const tokensBefore = entra.tokenRequests().length;
    const error = await sendExpectingError(r, simple());
    assert.equal(error.code, 'EAUTH');
    assert.equal(toProblem(error).status, 502);
    assert.deepEqual(smtp.authAttempts.slice(authBefore).map((a) => [a.user, a.accepted]), [['stranger@contoso.com', false], ['stranger@contoso.com', false]]);
    assert.equal(entra.tokenRequests().length - tokensBefore, 2);
  });

  it('535 5.7.139 maps to EAUTH with the SMTP AUTH disabled hint', async () => {
    smtp.failures.auth = { code: 535, text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information.' };
    const error = await sendExpectingError(runtime(), simple());
    assert.equal(error.code, 'EAUTH');
    assert.equal(error.providerCode, '5.7.139');
    assert.match(error.hint ?? '', /Set-CASMailbox -SmtpClientAuthenticationDisabled \$false/);
    assert.match(error.message, /535 5\.7\.139/);
  });

  it('550 5.7.60 SendAsDenied maps to ESEND_DENIED naming from', async () => {
    smtp.failures.mailFrom = { code: 550, text: '5.7.60 SMTP; Client does not have permissions to send as this sender' };
    const error = await sendExpectingError(runtime(), simple());
    assert.equal(error.code, 'ESEND_DENIED');
    assert.equal(error.field, 'from');
    assert.match(error.hint ?? '', /Send As/);
  });

  it('432 4.3.2 (too many concurrent sessions) maps to ETHROTTLED with a retryAfter', async () => {
    smtp.failures.mailFrom = { code: 432, text: '4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded' };
    const error = await sendExpectingError(runtime(), simple());
    assert.equal(error.code, 'ETHROTTLED');
    assert.equal(toProblem(error).status, 429);
    assert.ok((error.retryAfter ?? 0) > 0);
  });

  it('421 4.3.2 at the greeting maps to EUNAVAILABLE (503)', async () => {
    smtp.failures.connect = { code: 421, text: '4.3.2 Service not available, closing transmission channel' };
    const error = await sendExpectingError(runtime(), simple());
    assert.equal(error.code, 'EUNAVAILABLE');
    assert.equal(toProblem(error).status, 503);
  });

  it('a rejected recipient maps to EREJECTED naming the field it came from', async () => {
    smtp.failures.rcptTo = (address) => (address === 'nobody@contoso.com' ? { code: 550, text: '5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' } : undefined);
    const error = await sendExpectingError(runtime(), { cc: 'nobody@contoso.com', subject: 's', text: 't' });
    assert.equal(error.code, 'EREJECTED');
    assert.equal(error.field, 'cc');
    assert.equal(error.providerCode, '5.1.10');
  });

  it('a rotated client secret is picked up after exactly one refused auth, and the send succeeds', async () => {
    const r = runtime();
    await sendMail(r, simple());
    const app = entra.apps.get(CLIENT_ID)!;
    rememberTokens();
    // Rotation: the app gets a new secret, the setting follows, and the old token stops working.
    app.secret = SECOND_SECRET;
    r.env.SUPPORT_CLIENT_SECRET = SECOND_SECRET;
    entra.revokeAll();
    // The pooled session was authenticated with the old token; the server ends it.
    smtp.closeConnections();
    await delay(50);

    const authBefore = smtp.authAttempts.length;
    const tokensBefore = entra.tokenRequests().length;
    const messagesBefore = smtp.messages.length;
    const outcome = await sendMail(r, simple('after-rotation@example.com'));
    assert.equal(outcome.status, 'sent');
    assert.deepEqual(smtp.authAttempts.slice(authBefore).map((a) => a.accepted), [false, true]);
    assert.deepEqual(entra.tokenRequests().slice(tokensBefore).map((t) => t.outcome), ['issued']);
    assert.deepEqual(smtp.messages.slice(messagesBefore).map((m) => m.envelope.to), [['after-rotation@example.com']]);
  });

  it('100 sends cost exactly one token request and reuse pooled sessions', async () => {
    const r = runtime();
    const tokensBefore = entra.tokenRequests().length;
    const authBefore = smtp.authAttempts.length;
    const messagesBefore = smtp.messages.length;
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => sendMail(r, simple(`r${i}@example.com`))));
    assert.equal(outcomes.filter((o) => o.status === 'sent').length, 100);
    assert.equal(entra.tokenRequests().length - tokensBefore, 1);
    assert.equal(smtp.messages.length - messagesBefore, 100);
    const auths = smtp.authAttempts.slice(authBefore);
    assert.ok(auths.every((a) => a.accepted));
    assert.ok(auths.length <= 3, `at most one auth per pooled connection, got ${auths.length}`);
  });

  it('no secret or token appears in any captured log line or error', () => {
    rememberTokens();
    assert.ok(seenTokens.size >= 3, 'the suite should have issued tokens to look for');
    assert.ok(seenErrors.length >= 5 && logLines.length > 0);
    const sensitive = [FIRST_SECRET, SECOND_SECRET, ...seenTokens].flatMap((v) => [v, Buffer.from(v).toString('base64').replace(/=+$/, '')]);
    const xoauth = [...seenTokens].map((t) => Buffer.from(`user=${MAILBOX}\x01auth=Bearer ${t}\x01\x01`).toString('base64'));
    const texts = [
      ...logLines,
      ...seenErrors.flatMap((e) => (e instanceof MailError ? [e.message, e.hint ?? '', JSON.stringify(toProblem(e))] : [String(e)])),
    ];
    for (const text of texts) {
      for (const value of [...sensitive, ...xoauth]) assert.ok(!text.includes(value), `a secret or token leaked into: ${text.slice(0, 120)}`);
    }
  });
});
