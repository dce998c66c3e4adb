import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { diagnoseProfile, type DiagnosisReport } from '../../shared/diagnose/diagnoseProfile.js';
import { createLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { Pop3Peer } from '../peers/pop3Peer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';

const TENANT = 'contoso-tenant';
const CLIENT_ID = 'diagnosed-app';
const MAILBOX = 'support@contoso.com';
const SECRET = `diag-secret-${randomBytes(12).toString('hex')}`;
const HOOK_KEY = `hook-key-${randomBytes(12).toString('hex')}`;

describe('diagnosing a profile step by step against loopback Entra, SMTP, IMAP and Graph peers', () => {
  const entra = new TokenEndpointPeer();
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX] });
  const imap = new ImapPeer(entra, { mailbox: MAILBOX });
  const graph = new GraphPeer(entra);
  const logLines: string[] = [];
  const logger = createLogger({ log: (l: unknown) => logLines.push(String(l)), warn: (l: unknown) => logLines.push(String(l)), error: (l: unknown) => logLines.push(String(l)) });
  const reports: DiagnosisReport[] = [];
  const runtimes: MailRuntime[] = [];

  before(async () => {
    await Promise.all([entra.start(), smtp.start(), imap.start(), graph.start()]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
    graph.addMailbox(MAILBOX);
  });
  beforeEach(() => {
    smtp.failures = {};
    graph.clearFaults();
  });
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.close()));
  });
  after(async () => {
    await Promise.all([smtp.stop(), imap.stop(), graph.stop()]);
    await entra.stop();
  });

  const identity = () => ({ mailbox: MAILBOX, tenantId: TENANT, clientId: CLIENT_ID, auth: { type: 'clientSecret', secret: 'support-client-secret' } });
  const webhook = { webhook: { url: 'https://app.example.com/hooks/mail', signingSecret: 'support-hook-key' } };

  function runtime(profile: Record<string, unknown>, secrets: Record<string, string> = { SUPPORT_CLIENT_SECRET: SECRET, SUPPORT_HOOK_KEY: HOOK_KEY }): MailRuntime {
    const r = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { support: profile } }), ...secrets }, logger });
    runtimes.push(r);
    return r;
  }

  const smtpImapProfile = () => ({
    ...identity(),
    send: { via: 'smtp' },
    receive: { via: 'imap', afterFetch: 'markRead', deliver: webhook },
    endpoints: { authority: entra.url, smtp: smtp.endpoint, imap: imap.endpoint },
  });
  const graphProfile = () => ({
    ...identity(),
    send: { via: 'graph' },
    receive: { via: 'graph', deliver: webhook },
    endpoints: { authority: entra.url, graph: graph.url },
  });

  async function diagnose(r: MailRuntime, options: Parameters<typeof diagnoseProfile>[2] = {}): Promise<DiagnosisReport> {
    const report = await diagnoseProfile(r, 'support', options);
    reports.push(report);
    return report;
  }

  const stepNames = (report: DiagnosisReport) => report.steps.map((s) => `${s.step}:${s.ok ? 'ok' : 'failed'}`);

  it('a healthy SMTP + IMAP profile passes config, secret, token, send-connect and receive-connect, and sends, reads and changes nothing', async () => {
    imap.append('INBOX', 'From: a@example.com\r\nSubject: waiting\r\n\r\nstill unread\r\n');
    const sentBefore = smtp.messages.length;
    const authsBefore = smtp.authAttempts.length;
    const commandsBefore = imap.commands.length;
    const tokensBefore = entra.tokenRequests().length;

    const report = await diagnose(runtime(smtpImapProfile()));

    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.equal(report.profile, 'support');
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:ok', 'receive-connect:ok']);
    for (const step of report.steps) assert.ok(Number.isInteger(step.durationMs) && step.durationMs >= 0);
    const [config, secret, token] = report.steps;
    assert.match(config!.detail!, new RegExp(`send via smtp to ${smtp.endpoint.replace('.', '\\.')} \\(STARTTLS, XOAUTH2\\)`));
    assert.match(config!.detail!, new RegExp(`receive via imap from ${imap.endpoint.replace('.', '\\.')}`));
    assert.match(config!.detail!, /auth clientSecret \(tenant contoso-tenant, client diagnosed-app/);
    assert.match(secret!.detail!, /client secret "support-client-secret" resolved from the app settings; client secret expiry: no date known; webhook signing secret "support-hook-key" resolved/);
    assert.match(token!.detail!, /Office 365 Exchange Online token for https:\/\/outlook\.office365\.com\/\.default: not a JWT/);

    // One fresh Exchange token serves the token step, the SMTP login and the IMAP login.
    const tokenRequests = entra.tokenRequests().slice(tokensBefore);
    assert.deepEqual(tokenRequests.map((t) => [t.scope, t.outcome]), [['https://outlook.office365.com/.default', 'issued']]);
    assert.deepEqual(smtp.authAttempts.slice(authsBefore).map((a) => [a.method, a.user, a.accepted, a.clientId]), [['XOAUTH2', MAILBOX, true, CLIENT_ID]]);
    assert.equal(smtp.messages.length, sentBefore, 'the SMTP check must not submit a message');

    const commands = imap.commands.slice(commandsBefore).map((c) => c.split(/\s+/)[1]?.toUpperCase());
    assert.ok(commands.includes('AUTHENTICATE') && commands.includes('SELECT') && commands.includes('LOGOUT'), commands.join(' '));
    assert.deepEqual(commands.filter((c) => c === 'FETCH' || c === 'UID' || c === 'STORE' || c === 'MOVE' || c === 'EXPUNGE'), []);
    assert.ok(imap.messages('INBOX').every((m) => !m.flags.includes('\\Seen')), 'nothing may be marked read');
  });

  it('with a test address, the send-test step sends one short message that the SMTP server receives', async () => {
    const sentBefore = smtp.messages.length;
    const report = await diagnose(runtime(smtpImapProfile()), { send: { to: 'checker@example.com' } });
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:ok', 'receive-connect:ok', 'send-test:ok']);
    assert.equal(smtp.messages.length, sentBefore + 1);
    const received = smtp.messages.at(-1)!;
    assert.deepEqual(received.envelope, { from: MAILBOX, to: ['checker@example.com'] });
    assert.match(received.raw.toString(), /^Subject: m365-mail connection test \(support\)\r$/m);
    assert.match(report.steps.at(-1)!.detail!, /^sent to checker@example\.com via smtp, Message-ID <.+@contoso\.com>$/);
  });

  it('a wrong client secret fails at the token step with the AADSTS7000215 hint, and nothing after it runs', async () => {
    const authsBefore = smtp.authAttempts.length;
    const report = await diagnose(runtime(smtpImapProfile(), { SUPPORT_CLIENT_SECRET: 'not-the-secret-value', SUPPORT_HOOK_KEY: HOOK_KEY }));
    assert.equal(report.ok, false);
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:failed']);
    const token = report.steps.at(-1)!;
    assert.equal(token.code, 'ETOKEN');
    assert.equal(token.providerCode, 'AADSTS7000215');
    assert.match(token.hint!, /client secret is wrong or expired/);
    assert.match(token.detail!, /AADSTS7000215/);
    assert.equal(smtp.authAttempts.length, authsBefore, 'no connection step may run after a failed step');
  });

  it('a secret missing from the store fails at the secret step, naming the setting to create', async () => {
    const report = await diagnose(runtime(smtpImapProfile(), { SUPPORT_HOOK_KEY: HOOK_KEY }));
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:failed']);
    assert.equal(report.steps[1]!.code, 'ESECRET_NOT_FOUND');
    assert.match(report.steps[1]!.hint!, /SUPPORT_CLIENT_SECRET/);
  });

  it('a secret ID stored instead of the secret value is pointed out on the passed secret step', async () => {
    const report = await diagnose(runtime(smtpImapProfile(), { SUPPORT_CLIENT_SECRET: '3f2504e0-4f89-11d3-9a0c-0305e82c3301', SUPPORT_HOOK_KEY: HOOK_KEY }));
    assert.deepEqual(stepNames(report).slice(0, 3), ['config:ok', 'secret:ok', 'token:failed']);
    assert.match(report.steps[1]!.hint!, /looks like a secret ID/);
  });

  it('SMTP AUTH disabled for the tenant (535 5.7.139) fails at send-connect with the SMTP AUTH hint, before the mailbox is opened', async () => {
    smtp.failures = { auth: { code: 535, text: '5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.' } };
    const commandsBefore = imap.commands.length;
    const report = await diagnose(runtime(smtpImapProfile()));
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:failed']);
    const step = report.steps.at(-1)!;
    assert.equal(step.code, 'EAUTH');
    assert.equal(step.providerCode, '5.7.139');
    assert.match(step.hint!, /SMTP AUTH is disabled for the tenant or mailbox/);
    assert.match(step.hint!, /SmtpClientAuthenticationDisabled \$false/);
    assert.equal(imap.commands.length, commandsBefore);
  });

  it('an IMAP server that refuses the token fails at receive-connect with the Exchange permission hint', async () => {
    const refusing = new ImapPeer(entra, { mailbox: MAILBOX, grantedClients: ['some-other-app'] });
    await refusing.start();
    try {
      const report = await diagnose(runtime({ ...smtpImapProfile(), endpoints: { authority: entra.url, smtp: smtp.endpoint, imap: refusing.endpoint } }));
      assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:ok', 'receive-connect:failed']);
      assert.equal(report.steps.at(-1)!.code, 'EAUTH');
      assert.match(report.steps.at(-1)!.hint!, /IMAP\.AccessAsApp/);
    } finally {
      await refusing.stop();
    }
  });

  it('a POP3 receive-connect logs in and quits: no message is listed, retrieved or deleted', async () => {
    const pop3 = new Pop3Peer(entra, { mailbox: MAILBOX });
    await pop3.start();
    try {
      const uid = pop3.add('From: a@example.com\r\nSubject: waiting\r\n\r\nhello\r\n');
      const report = await diagnose(runtime({ ...identity(), receive: { via: 'pop3', afterFetch: 'delete', deliver: webhook }, endpoints: { authority: entra.url, pop3: pop3.endpoint } }));
      assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'receive-connect:ok']);
      assert.match(report.steps.at(-1)!.detail!, /^opened the mailbox of support@contoso\.com over pop3 at 127\.0\.0\.1:\d+ and closed it; nothing was read, marked or moved$/);
      const verbs = pop3.commands.map((c) => c.split(' ')[0]!.toUpperCase());
      assert.ok(verbs.includes('AUTH') && verbs.at(-1) === 'QUIT', verbs.join(' '));
      assert.deepEqual(verbs.filter((v) => ['RETR', 'DELE', 'TOP'].includes(v)), []);
      assert.deepEqual(pop3.uids(), [uid]);
    } finally {
      await pop3.stop();
    }
  });

  it('a healthy Graph profile passes; Graph is asked for the inbox only, nothing is posted', async () => {
    const requestsBefore = graph.requests.length;
    const report = await diagnose(runtime(graphProfile()));
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:ok', 'receive-connect:ok']);
    assert.match(report.steps[2]!.detail!, /^Microsoft Graph token for https:\/\/graph\.microsoft\.com\/\.default: not a JWT/);
    assert.match(report.steps[3]!.detail!, /accepted the token and found the inbox of support@contoso\.com/);
    const requests = graph.requests.slice(requestsBefore);
    assert.ok(requests.length > 0);
    assert.deepEqual(requests.filter((r) => r.method !== 'GET'), []);
    assert.ok(requests.some((r) => r.path === `/v1.0/users/${encodeURIComponent(MAILBOX)}/mailFolders/inbox` && r.status === 200));
    assert.ok(requests.every((r) => r.status === 200 && /^Bearer tok-/.test(String(r.headers.authorization))));
  });

  it('Graph answering ErrorAccessDenied fails at send-connect with the Mail.Send permission hint', async () => {
    graph.inject({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.', match: /^GET .*\/mailFolders\/inbox$/ });
    const report = await diagnose(runtime(graphProfile()));
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:failed']);
    const step = report.steps.at(-1)!;
    assert.equal(step.code, 'EAUTH');
    assert.equal(step.providerCode, 'ErrorAccessDenied');
    assert.match(step.hint!, /Mail\.Send/);
  });

  it('a Graph profile with a test address sends the test message through sendMail', async () => {
    const sentBefore = graph.sent.length;
    const report = await diagnose(runtime(graphProfile()), { send: { to: 'checker@example.com' } });
    assert.equal(report.ok, true, JSON.stringify(report, null, 2));
    assert.equal(graph.sent.length, sentBefore + 1);
    assert.deepEqual(graph.sent.at(-1)!.message.toRecipients, [{ emailAddress: { address: 'checker@example.com' } }]);
  });

  it('a JWT access token shows its roles, and a role the profile lacks is a hint on the passed token step', async () => {
    entra.register({ tenantId: TENANT, clientId: 'send-only-app', secret: SECRET, roles: { 'https://graph.microsoft.com': ['Mail.Send'] } });
    const report = await diagnose(runtime({ ...graphProfile(), clientId: 'send-only-app' }));
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:ok', 'receive-connect:ok']);
    const token = report.steps[2]!;
    assert.equal(token.detail, 'Microsoft Graph token for https://graph.microsoft.com/.default: JWT, roles Mail.Send: Mail.Send present');
    assert.equal(
      token.hint,
      'The Microsoft Graph token has no Mail.ReadBasic or Mail.Read or Mail.ReadWrite role, needed to look a send whose outcome is unknown up in Sent Items (or send.unknownOutcome decides): add the Microsoft Graph application permission Mail.ReadBasic to the app registration and grant admin consent.'
        + ' If the access is granted in Exchange Online instead (RBAC for Applications, role "Application Mail.ReadBasic" scoped to the mailbox), the token carries no role and this is expected: the connection steps below test the grant. '
        + 'The Microsoft Graph token has no Mail.Read or Mail.ReadWrite role, needed to read mail through Graph: add the Microsoft Graph application permission Mail.Read to the app registration and grant admin consent.'
        + ' If the access is granted in Exchange Online instead (RBAC for Applications, role "Application Mail.Read" scoped to the mailbox), the token carries no role and this is expected: the connection steps below test the grant.',
    );
  });

  it('for a send-only Graph app whose token carries Mail.Send, Graph refusing to read the inbox passes send-connect with a hint to send a test message', async () => {
    entra.register({ tenantId: TENANT, clientId: 'send-only-app', secret: SECRET, roles: { 'https://graph.microsoft.com': ['Mail.Send'] } });
    graph.inject({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.', match: /^GET .*\/mailFolders\/inbox$/ });
    const { receive: _receive, ...sendOnly } = graphProfile();
    const report = await diagnose(runtime({ ...sendOnly, clientId: 'send-only-app' }));
    assert.deepEqual(stepNames(report), ['config:ok', 'secret:ok', 'token:ok', 'send-connect:ok']);
    const step = report.steps.at(-1)!;
    assert.match(step.detail!, /accepted the token but refused to read the inbox of support@contoso\.com, as it does for an app with Mail\.Send only/);
    assert.match(step.hint!, /give sendTo/);
    assert.equal(graph.apiRequests('GET', /\/mailFolders\/inbox$/).at(-1)?.errorCode, 'ErrorAccessDenied');
  });

  describe('certificate profiles', () => {
    async function keyAndCertificate(notBefore: Date, notAfter: Date): Promise<{ key: string; cert: string }> {
      const selfsigned = require('selfsigned') as typeof import('selfsigned');
      const pems = await selfsigned.generate([{ name: 'commonName', value: 'diagnosed-cert-app' }], { keySize: 2048, notBeforeDate: notBefore, notAfterDate: notAfter });
      return { key: pems.private, cert: pems.cert };
    }
    const certificateProfile = () => ({ ...graphProfile(), clientId: 'cert-app', auth: { type: 'certificate', certificate: 'support-cert' } });

    it('a valid certificate passes the secret step with its thumbprint and expiry, then gets a token with it', async () => {
      const { key, cert } = await keyAndCertificate(new Date(Date.now() - 86_400_000), new Date(Date.now() + 200 * 86_400_000));
      entra.register({ tenantId: TENANT, clientId: 'cert-app', certificatePem: cert });
      const report = await diagnose(runtime(certificateProfile(), { SUPPORT_CERT: `${key}${cert}`, SUPPORT_HOOK_KEY: HOOK_KEY }));
      assert.equal(report.ok, true, JSON.stringify(report, null, 2));
      assert.match(report.steps[1]!.detail!, /^certificate "support-cert" resolved from the app settings: CN=diagnosed-cert-app, thumbprint [0-9A-F]{40}, private key matches, valid until \S+ \((199|200) days left\)/);
      assert.ok(!JSON.stringify(report).includes('PRIVATE KEY'));
    });

    it('an expired certificate fails at the secret step, and no token is requested with it', async () => {
      const { key, cert } = await keyAndCertificate(new Date(Date.now() - 400 * 86_400_000), new Date(Date.now() - 86_400_000));
      entra.register({ tenantId: TENANT, clientId: 'cert-app', certificatePem: cert });
      const tokensBefore = entra.tokenRequests().length;
      const report = await diagnose(runtime(certificateProfile(), { SUPPORT_CERT: `${key}${cert}`, SUPPORT_HOOK_KEY: HOOK_KEY }));
      assert.deepEqual(stepNames(report), ['config:ok', 'secret:failed']);
      assert.equal(report.steps[1]!.code, 'ECERTIFICATE');
      assert.match(report.steps[1]!.detail!, /expired on/);
      assert.equal(entra.tokenRequests().length, tokensBefore);
    });
  });

  it('a diagnosis that runs out of time fails the running step with ECONNECTION and a network hint', async () => {
    const controller = new AbortController();
    controller.abort(new Error('timed out'));
    const report = await diagnose(runtime(smtpImapProfile()), { abortSignal: controller.signal });
    assert.deepEqual(stepNames(report), ['config:failed']);
    assert.equal(report.steps[0]!.code, 'ECONNECTION');
    assert.match(report.steps[0]!.hint!, /did not answer in time/);
  });

  it('an invalid profiles document is the failed config step, naming the profile and field', async () => {
    const report = await diagnoseProfile(() => new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { support: { ...smtpImapProfile(), mailbox: 'not-an-address' } } }) } }), 'support');
    assert.deepEqual(stepNames(report), ['config:failed']);
    assert.equal(report.steps[0]!.code, 'ECONFIG');
    assert.match(report.steps[0]!.detail!, /profile "support": mailbox must be an e-mail address/);
    assert.match(report.steps[0]!.hint!, /profiles\.support\.mailbox/);
  });

  it('an unknown profile is not diagnosed: EPROFILE_UNKNOWN', async () => {
    await assert.rejects(diagnoseProfile(runtime(smtpImapProfile()), 'nobody'), { code: 'EPROFILE_UNKNOWN' });
  });

  it('no secret, signing key or access token appears in any report or log line', () => {
    assert.ok(reports.length >= 10);
    const tokens = [...entra.issued.keys()];
    assert.ok(tokens.length > 0);
    const output = [...reports.map((r) => JSON.stringify(r)), ...logLines].join('\n');
    for (const value of [SECRET, HOOK_KEY, 'not-the-secret-value', ...tokens, ...tokens.map((t) => t.split('.').at(-1)!)]) assert.ok(!output.includes(value), `leaked ${value.slice(0, 8)}…`);
    assert.ok(logLines.some((l) => /"operation":"diagnose"/.test(l)));
  });
});
