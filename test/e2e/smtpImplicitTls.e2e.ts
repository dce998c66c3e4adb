import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../shared/mail/parse.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { ImapReader } from '../../shared/transports/imap/imapReader.js';
import type { SmtpSecurity } from '../../shared/transports/smtp/security.js';
import { mailErrorFrom } from '../support/mailError.js';
import { poll } from '../transports/readerHarness.js';
import { HelpdeskSystem, MAILBOX } from './helpdeskSystem.js';
import type { MailServers } from './mailServers.js';

const CLIENT_ID = 'implicit-tls-app';

describe('SMTP over implicit TLS through the real Postfix: SmtpSender (send.smtpSecurity "implicit", XOAUTH2) to the submissions service (wrapper mode), LMTP into Dovecot, read back over IMAP', { timeout: 300_000 }, () => {
  const system = new HelpdeskSystem(CLIENT_ID);
  const { entra, logs } = system;
  let servers: MailServers;
  const newRuntime = (smtp: string, security: SmtpSecurity, greetingTimeoutSeconds?: number) =>
    system.runtime({ smtp, send: { smtpSecurity: security, ...(greetingTimeoutSeconds !== undefined && { greetingTimeoutSeconds }) } });
  const port = (hostPort: string) => hostPort.split(':')[1]!;

  before(() => {
    servers = system.servers;
  });

  it('a message sent with smtpSecurity "implicit" to the submissions port arrives in Dovecot, over a TLS session that Postfix logged and recorded', async () => {
    await servers.empty(MAILBOX);
    const runtime = newRuntime(servers.submissions, 'implicit');
    const outcome = await sendMail(runtime, { to: MAILBOX, subject: 'Over SMTP (SSL) ✓', text: 'Sent with TLS from the first byte.' });
    assert.equal(outcome.status, 'sent');

    await servers.waitForMessages(MAILBOX, 1);
    const profile = runtime.profile('helpdesk');
    const read = await poll(new ImapReader(profile, { tokens: runtime.tokens(profile), logger: runtime.logger }), undefined);
    assert.equal(read.messages.length, 1);
    const fetched = read.messages[0]!;
    const message = await parseMessage(fetched.source, { profile, via: 'imap', providerId: fetched.providerId, receivedAt: fetched.receivedAt });
    assert.equal(message.messageId, outcome.messageId);
    assert.equal(message.subject, 'Over SMTP (SSL) ✓');
    assert.equal(message.text?.trim(), 'Sent with TLS from the first byte.');

    // The submissions service served it (not the STARTTLS one): its TLS handshake, the SASL login
    // and, in the Received header Postfix added, TLS and an authenticated ESMTP session.
    const serverLog = servers.logs();
    assert.match(serverLog, /postfix\/submissions\/smtpd\[\d+\]: Anonymous TLS connection established from localhost\[127\.0\.0\.1\]: TLSv1\.[23] with cipher/);
    assert.match(serverLog, new RegExp(`postfix/submissions/smtpd\\[\\d+\\]: \\w+: client=localhost\\[127\\.0\\.0\\.1\\], sasl_method=XOAUTH2, sasl_username=${MAILBOX}`));
    assert.doesNotMatch(serverLog, /postfix\/smtpd\[\d+\]: \w+: client=/, 'the STARTTLS submission service took no message');
    const receivedHeaders = fetched.source.toString('latin1').match(/^Received: [^\r]*(?:\r\n[ \t][^\r]*)*/gm) ?? [];
    const received = receivedHeaders.find((h) => /by mx\.e2e\.test \(Postfix\)/.test(h)) ?? receivedHeaders.join('\n');
    assert.match(received, /\(using TLSv1\.[23] with cipher /);
    assert.match(received, /with ESMTPSA id /);
    const tokens = [...entra.issued.keys()];
    assert.ok(tokens.length > 0 && !logs.some((l) => tokens.some((t) => l.includes(t))), 'no access token in our log lines');
  });

  it('smtpSecurity "implicit" against the STARTTLS submission port is ETLS at once, naming send.smtpSecurity and the port; nothing is delivered', async () => {
    await servers.empty(MAILBOX);
    const started = Date.now();
    const error = await mailErrorFrom(sendMail(newRuntime(servers.smtp, 'implicit'), { to: MAILBOX, subject: 'mismatch', text: 'x' }));
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    assert.equal(error.code, 'ETLS', error.message);
    assert.match(error.message, /the server answered in plain text/);
    assert.match(error.hint ?? '', new RegExp(`set send\\.smtpSecurity to "starttls" for port ${port(servers.smtp)}`));
    assert.deepEqual(await servers.messages(MAILBOX), []);
  });

  it('smtpSecurity "starttls" against the submissions port is ECONNECTION after the greeting timeout, naming send.smtpSecurity and the port; nothing is delivered', async () => {
    await servers.empty(MAILBOX);
    const started = Date.now();
    const error = await mailErrorFrom(sendMail(newRuntime(servers.submissions, 'starttls', 2), { to: MAILBOX, subject: 'mismatch', text: 'x' }));
    assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
    assert.equal(error.code, 'ECONNECTION', error.message);
    assert.match(error.message, /accepted the connection but sent no SMTP greeting/);
    assert.match(error.hint ?? '', new RegExp(`set send\\.smtpSecurity to "implicit" for port ${port(servers.submissions)}`));
    assert.deepEqual(await servers.messages(MAILBOX), []);
  });
});
