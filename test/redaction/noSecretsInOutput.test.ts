import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { send } from '../../functions/send.js';
import type { MailError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { mailErrorFrom } from '../support/mailError.js';

const TENANT = 'contoso-tenant';
const MAILBOX = 'support@contoso.com';
const GRAPH_APP = { tenantId: TENANT, clientId: 'redaction-graph-app', secret: `graph-secret-${randomBytes(12).toString('hex')}` };
const SMTP_APP = { tenantId: TENANT, clientId: 'redaction-smtp-app', secret: `smtp-secret-${randomBytes(12).toString('hex')}` };

/**
 * The worst case a provider can produce: an error text that echoes the credentials it was
 * given. Whatever leaves the process (problem body, error message, log line) must not carry them.
 */
describe('no secret or access token reaches a response, an error message or a log line', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX] });
  const logs: string[] = [];
  const runtimes: MailRuntime[] = [];

  before(async () => {
    await entra.start();
    await graph.start();
    await smtp.start();
    entra.register(GRAPH_APP);
    entra.register(SMTP_APP);
    graph.addMailbox(MAILBOX);
  });
  afterEach(async () => {
    graph.clearFaults();
    smtp.failures = {};
    setRuntime(undefined);
    await Promise.all(runtimes.splice(0).map((r) => r.close()));
  });
  after(async () => {
    await smtp.stop();
    await graph.stop();
    await entra.stop();
  });

  function useRuntime(via: 'graph' | 'smtp', secret: string): void {
    const app = via === 'graph' ? GRAPH_APP : SMTP_APP;
    const sink = (...args: unknown[]) => logs.push(args.map(String).join(' '));
    const runtime = new MailRuntime({
      env: {
        MAIL_PROFILES: JSON.stringify({ profiles: { support: {
          mailbox: MAILBOX, tenantId: TENANT, clientId: app.clientId,
          auth: { type: 'clientSecret', secret: 'support-client-secret' },
          send: { via },
          endpoints: { authority: entra.url, graph: graph.url, smtp: smtp.endpoint },
        } } }),
        SUPPORT_CLIENT_SECRET: secret,
      },
      logger: createLogger({ log: sink, warn: sink, error: sink }),
    });
    runtimes.push(runtime);
    setRuntime(runtime);
  }

  const body = { to: 'ann@example.com', subject: 'Status', text: 'All good' };

  /** POST /api/send through the function handler, as the host calls it. */
  async function post(): Promise<{ status: number | undefined; problem: Record<string, unknown> }> {
    const request = new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/send',
      headers: { 'content-type': 'application/json' },
      body: { string: JSON.stringify(body) },
    });
    const context = new InvocationContext({ invocationId: randomBytes(8).toString('hex'), functionName: 'send', logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) });
    const response = await send(request, context);
    return { status: response.status, problem: JSON.parse(String(response.body)) as Record<string, unknown> };
  }

  /** The same failing send through the HTTP handler and through sendMail (for the error itself). */
  async function failingSend(): Promise<{ status: number | undefined; problem: Record<string, unknown>; error: MailError; outputs: string[] }> {
    const logsFrom = logs.length;
    const { status, problem } = await post();
    const runtime = runtimes.at(-1)!;
    const error = await mailErrorFrom(sendMail(runtime, body));
    const outputs = [JSON.stringify(problem), error.message, error.hint ?? '', ...logs.slice(logsFrom)];
    return { status, problem, error, outputs };
  }

  function assertClean(outputs: string[], sensitive: string[]): void {
    assert.ok(outputs.length > 3, 'the failure produced a problem, an error and log lines');
    for (const text of outputs) {
      for (const value of sensitive) assert.ok(!text.includes(value), `${value.slice(0, 24)}... leaked into: ${text}`);
    }
  }

  /** The XOAUTH2 SASL string a token travels in, as SMTP/IMAP/POP3 servers see it. */
  const xoauth2 = (token: string) => Buffer.from(`user=${MAILBOX}\x01auth=Bearer ${token}\x01\x01`).toString('base64');

  const echo = (token: string, secret: string) =>
    `Authorization: Bearer ${token}; token ${token}; client_secret=${secret}; sasl ${xoauth2(token)}; secret ${secret}`;

  const latestToken = (clientId: string) => [...entra.issued.values()].filter((t) => t.clientId === clientId).at(-1)!.token;

  it('Graph: a 401 whose message echoes the bearer token and the client secret', async () => {
    useRuntime('graph', GRAPH_APP.secret);
    assert.equal((await post()).status, 200, 'the first send obtains and caches a token');
    const token = latestToken(GRAPH_APP.clientId);
    graph.inject({ status: 401, code: 'InvalidAuthenticationToken', message: echo(token, GRAPH_APP.secret), times: 10 });

    const { status, problem, error, outputs } = await failingSend();
    assert.equal(status, 502);
    assert.equal(problem.code, 'EAUTH');
    assert.equal(error.code, 'EAUTH');
    assert.match(String(problem.detail), /\[redacted\]/, 'the provider text is kept, with the credentials taken out');
    const tokens = [...entra.issued.values()].filter((t) => t.clientId === GRAPH_APP.clientId).map((t) => t.token);
    assertClean(outputs, [GRAPH_APP.secret, ...tokens, ...tokens.map(xoauth2)]);
  });

  it('SMTP: a 535 whose text echoes the token, its XOAUTH2 form and the client secret', async () => {
    useRuntime('smtp', SMTP_APP.secret);
    assert.equal((await post()).status, 200);
    const token = latestToken(SMTP_APP.clientId);
    smtp.failures = { auth: { code: 535, text: `5.7.3 Authentication unsuccessful ${echo(token, SMTP_APP.secret)}` } };
    await runtimes.at(-1)!.close();

    const { status, problem, error, outputs } = await failingSend();
    assert.equal(status, 502);
    assert.equal(problem.code, 'EAUTH');
    assert.equal(error.code, 'EAUTH');
    const tokens = [...entra.issued.values()].filter((t) => t.clientId === SMTP_APP.clientId).map((t) => t.token);
    assertClean(outputs, [SMTP_APP.secret, ...tokens, ...tokens.map(xoauth2)]);
  });

  it('Entra: a wrong client secret is ETOKEN with its hint, and the secret in use is not echoed', async () => {
    const wrong = `wrong-secret-${randomBytes(12).toString('hex')}`;
    useRuntime('graph', wrong);
    const { status, problem, error, outputs } = await failingSend();
    assert.equal(status, 502);
    assert.equal(problem.code, 'ETOKEN');
    assert.equal(error.providerCode, 'AADSTS7000215');
    assert.match(String(problem.hint), /client secret is wrong or expired/);
    assertClean(outputs, [wrong, GRAPH_APP.secret]);
  });
});
