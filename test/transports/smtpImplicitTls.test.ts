import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { exchangeScope } from '../../shared/config/cloud.js';
import type { Profile } from '../../shared/config/profiles.js';
import type { MailError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { smtp as smtpDescriptor } from '../../shared/transports/smtp/index.js';
import { verifySmtpLogin } from '../../shared/transports/smtp/probe.js';
import { smtpSecurity, type SmtpSecurity } from '../../shared/transports/smtp/security.js';
import { smtpPoolOptions } from '../../shared/transports/smtp/smtpSender.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom, mailErrorOf } from '../support/mailError.js';

const MAILBOX = 'support@contoso.com';
const TENANT = 'contoso-tenant';
const CLIENT_ID = 'smtp-implicit-tls-app';
const SECRET = `implicit-tls-secret-${randomBytes(8).toString('hex')}`;

/** One SMTP profile as the profiles document would hold it, with `send` and `endpoints.smtp` as given. */
function profileEntry(options: { smtp?: string; smtpSecurity?: unknown; authority?: string; greetingTimeoutSeconds?: number }): Record<string, unknown> {
  return {
    mailbox: MAILBOX,
    tenantId: TENANT,
    clientId: CLIENT_ID,
    auth: { type: 'clientSecret', secret: 'support-client-secret' },
    send: { via: 'smtp', allowedFrom: [MAILBOX], ...(options.smtpSecurity !== undefined && { smtpSecurity: options.smtpSecurity }), ...(options.greetingTimeoutSeconds !== undefined && { greetingTimeoutSeconds: options.greetingTimeoutSeconds }) },
    endpoints: { ...(options.authority !== undefined && { authority: options.authority }), ...(options.smtp !== undefined && { smtp: options.smtp }) },
  };
}

const parsed = (options: { smtp?: string; smtpSecurity?: unknown }): Profile => parseProfiles({ profiles: { support: profileEntry(options) } }, 'test').profiles.get('support')!;

describe('send.smtpSecurity: which TLS a profile gets', () => {
  it('port 465 without the setting is implicit TLS; 587, 25, 2525 and the cloud default (smtp.office365.com:587) are STARTTLS', () => {
    assert.equal(smtpSecurity(parsed({ smtp: 'smtp.example.com:465' })), 'implicit');
    for (const port of [587, 25, 2525]) assert.equal(smtpSecurity(parsed({ smtp: `smtp.example.com:${port}` })), 'starttls', `port ${port}`);
    const cloudDefault = parsed({});
    assert.equal(cloudDefault.endpoints.smtp.port, 587);
    assert.equal(smtpSecurity(cloudDefault), 'starttls');
  });

  it('an explicit setting wins over the port: "starttls" on 465, "implicit" on 587', () => {
    assert.equal(smtpSecurity(parsed({ smtp: 'smtp.example.com:465', smtpSecurity: 'starttls' })), 'starttls');
    assert.equal(smtpSecurity(parsed({ smtp: 'smtp.example.com:587', smtpSecurity: 'implicit' })), 'implicit');
  });

  it('implicit is nodemailer secure:true; starttls is secure:false with requireTLS; neither touches certificate checks', () => {
    const endpoint = { host: 'smtp.example.com', port: 465 };
    const implicit = smtpPoolOptions(endpoint, 'implicit');
    const starttls = smtpPoolOptions(endpoint, 'starttls');
    assert.equal(implicit.secure, true);
    assert.equal(starttls.secure, false);
    assert.equal(starttls.requireTLS, true);
    assert.equal(starttls.ignoreTLS, undefined);
    for (const options of [implicit, starttls]) {
      assert.equal(options.tls, undefined, 'no tls options: Node verifies the certificate and host name');
      assert.equal(options.forceAuth, true);
    }
  });

  it('the profile description names the mode', () => {
    assert.match(smtpDescriptor.send!.describe(parsed({ smtp: 'smtp.example.com:465' })), /^send via smtp to smtp\.example\.com:465 \(implicit TLS, XOAUTH2\)$/);
    assert.match(smtpDescriptor.send!.describe(parsed({ smtp: 'smtp.example.com:587' })), /^send via smtp to smtp\.example\.com:587 \(STARTTLS, XOAUTH2\)$/);
  });

  it('a value other than "starttls" or "implicit" ("ssl") is ECONFIG naming send.smtpSecurity', () => {
    const error = mailErrorOf(() => parseProfiles({ profiles: { support: profileEntry({ smtp: 'smtp.example.com:465', smtpSecurity: 'ssl' }) } }, 'test'));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.profile, 'support');
    assert.equal(error.field, 'send.smtpSecurity');
    assert.match(error.message, /send\.smtpSecurity/);
    assert.match(error.message, /"starttls"\|"implicit"|starttls.*implicit/);
  });

  it('the field belongs to the SMTP transport: on a Graph sender it is ECONFIG (unrecognized)', () => {
    const entry = { ...profileEntry({}), send: { via: 'graph', smtpSecurity: 'implicit' } };
    const error = mailErrorOf(() => parseProfiles({ profiles: { support: entry } }, 'test'));
    assert.equal(error.code, 'ECONFIG');
    assert.equal(error.field, 'send.smtpSecurity');
  });
});

describe('SMTP over implicit TLS against loopback smtp-server peers (real nodemailer and @azure/identity)', () => {
  const entra = new TokenEndpointPeer();
  /** TLS from the first byte, as on port 465. */
  const implicitPeer = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX], implicitTls: true });
  /** A 587-style server: plain greeting, then STARTTLS. */
  const starttlsPeer = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX] });
  const logLines: string[] = [];
  const line = (l: unknown) => logLines.push(String(l));
  const logger = createLogger({ log: line, warn: line, error: line });
  const runtimes: MailRuntime[] = [];

  before(async () => {
    await Promise.all([entra.start(), implicitPeer.start(), starttlsPeer.start()]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
  });
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.close()));
  });
  after(async () => {
    await Promise.all([implicitPeer.stop(), starttlsPeer.stop()]);
    await entra.stop();
  });

  function runtime(peer: SmtpPeer, security: SmtpSecurity, extra: { greetingTimeoutSeconds?: number } = {}): MailRuntime {
    const profiles = { profiles: { support: profileEntry({ smtp: peer.endpoint, smtpSecurity: security, authority: entra.url, ...extra }) } };
    const r = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), SUPPORT_CLIENT_SECRET: SECRET }, logger });
    runtimes.push(r);
    return r;
  }

  /** What a session left on the peer: nothing received and no login offered, for a refused connection. */
  function counts(peer: SmtpPeer) {
    return { messages: peer.messages.length, auths: peer.authAttempts.length };
  }

  function assertNoTokenLogged(): void {
    const tokens = [...entra.issued.keys()];
    assert.ok(!logLines.some((l) => tokens.some((t) => l.includes(t))), 'no access token in the log lines');
  }

  it('sends with XOAUTH2 over TLS from the first byte: the peer receives the message in a TLS session, authenticated as the mailbox', async () => {
    const r = runtime(implicitPeer, 'implicit');
    const before = counts(implicitPeer);
    const outcome = await sendMail(r, { to: 'alice@example.com', subject: 'over 465', text: 'hi over implicit TLS' });
    assert.equal(outcome.status, 'sent');
    assert.equal(implicitPeer.messages.length, before.messages + 1);
    const received = implicitPeer.messages.at(-1)!;
    assert.ok(received.tls, 'the session was not encrypted');
    assert.match(received.tls.protocol, /^TLSv1\.[23]$/);
    assert.equal(received.user, MAILBOX);
    assert.deepEqual(received.envelope, { from: MAILBOX, to: ['alice@example.com'] });
    assert.match(received.raw.toString('utf8'), /^Subject: over 465\r$/m);
    assert.deepEqual(implicitPeer.authAttempts.slice(before.auths).map((a) => [a.method, a.user, a.accepted, a.clientId]), [['XOAUTH2', MAILBOX, true, CLIENT_ID]]);
    assert.match(received.raw.toString('utf8'), new RegExp(`^Message-ID: ${outcome.messageId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\r$`, 'mi'));
    assertNoTokenLogged();
  });

  it('the connection test (verifySmtpLogin) logs in over implicit TLS and sends nothing', async () => {
    const r = runtime(implicitPeer, 'implicit');
    const profile = r.profile('support');
    const before = counts(implicitPeer);
    const token = await r.tokens(profile).getToken(exchangeScope(profile.endpoints));
    await verifySmtpLogin(profile, token, {});
    assert.equal(implicitPeer.messages.length, before.messages);
    assert.deepEqual(implicitPeer.authAttempts.slice(before.auths).map((a) => a.accepted), [true]);
  });

  it('implicit TLS against a STARTTLS port is ETLS at once, with a hint naming send.smtpSecurity and the port; no login is offered', async () => {
    const r = runtime(starttlsPeer, 'implicit');
    const before = counts(starttlsPeer);
    const started = Date.now();
    const error = await mailErrorFrom(sendMail(r, { to: 'alice@example.com', subject: 'mismatch', text: 'x' }));
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    assertMismatch(error, { code: 'ETLS', port: starttlsPeer.endpoint.split(':')[1]!, advice: /set send\.smtpSecurity to "starttls" for port \d+/ });
    assert.match(error.message, /TLS handshake with 127\.0\.0\.1:\d+ failed: wrong version number: the server answered in plain text/);
    assert.equal(error.retryAfter, undefined, 'a configuration mistake is not retried');
    assert.deepEqual(counts(starttlsPeer), before);
  });

  it('the connection test gives the same ETLS and hint for that mismatch', async () => {
    const r = runtime(starttlsPeer, 'implicit');
    const profile = r.profile('support');
    const token = await r.tokens(profile).getToken(exchangeScope(profile.endpoints));
    const error = await mailErrorFrom(verifySmtpLogin(profile, token, {}));
    assertMismatch(error, { code: 'ETLS', port: starttlsPeer.endpoint.split(':')[1]!, advice: /"starttls"/ });
  });

  it('STARTTLS against an implicit-TLS port is ECONNECTION after the greeting timeout (send.greetingTimeoutSeconds, here 2 s; default 30 s), with a hint naming send.smtpSecurity and the port; no login is offered', async () => {
    const r = runtime(implicitPeer, 'starttls', { greetingTimeoutSeconds: 2 });
    const before = counts(implicitPeer);
    const started = Date.now();
    const error = await mailErrorFrom(sendMail(r, { to: 'alice@example.com', subject: 'mismatch', text: 'x' }));
    // Bounds, not a speed check: it waited for the greeting that never came, and gave up on the timeout it was given.
    const took = Date.now() - started;
    assert.ok(took >= 1_900 && took < 20_000, `took ${took} ms`);
    assertMismatch(error, { code: 'ECONNECTION', port: implicitPeer.endpoint.split(':')[1]!, advice: /set send\.smtpSecurity to "implicit" for port \d+/ });
    assert.match(error.message, /127\.0\.0\.1:\d+ accepted the connection but sent no SMTP greeting/);
    assert.deepEqual(counts(implicitPeer), before);
  });

  it('implicit TLS verifies the certificate: a server this host does not trust is ETLS, and no login is offered to it', async () => {
    const untrusted = await new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX], implicitTls: true, untrustedCertificate: true }).start();
    try {
      const r = runtime(untrusted, 'implicit');
      const error = await mailErrorFrom(sendMail(r, { to: 'alice@example.com', subject: 'untrusted', text: 'x' }));
      assert.equal(error.code, 'ETLS', error.message);
      assert.match(error.message, /TLS handshake with 127\.0\.0\.1:\d+ failed: .*(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED|UNABLE_TO_VERIFY)/);
      assert.match(error.hint ?? '', /certificate this host trusts \(NODE_EXTRA_CA_CERTS/);
      assert.match(error.hint ?? '', /send\.smtpSecurity is "implicit"/);
      assert.deepEqual(counts(untrusted), { messages: 0, auths: 0 });
    } finally {
      await untrusted.stop();
    }
  });
});

function assertMismatch(error: MailError, expected: { code: 'ETLS' | 'ECONNECTION'; port: string; advice: RegExp }): void {
  assert.equal(error.code, expected.code, `${error.code}: ${error.message}`);
  assert.equal(error.profile, 'support');
  const hint = error.hint ?? '';
  assert.match(hint, /send\.smtpSecurity/);
  assert.ok(hint.includes(`port ${expected.port}`), `hint does not name port ${expected.port}: ${hint}`);
  assert.match(hint, expected.advice);
  assert.match(hint, /Nothing was sent\.$/);
}
