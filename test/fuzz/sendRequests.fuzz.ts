import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { TableClient, TableServiceClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueServiceClient } from '@azure/storage-queue';
import fc from 'fast-check';
import { send } from '../../functions/send.js';
import { ERROR_CODES } from '../../shared/errors.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import { AzuritePeer } from '../peers/azurite.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { capturingLogger } from '../support/receiveHarness.js';
import { recordProcessFailures, secretsIn, table } from './report.js';
import { CATEGORIES, MAILBOX, RECEIVE_ONLY_PROFILE, WRONG_KEYS, WRONG_TOKENS, invalidCase, validCase, type Category, type Credential, type SendCase, type Who } from './sendCases.js';

/*
 * 10,000 generated requests for POST /api/send, every one invalid by construction (sendCases.ts),
 * through the real handler with callers configured and two sending profiles whose transports are
 * loopback peers that record everything. Each must be answered 4xx application/problem+json with
 * a code (and the field at fault where there is one), reach no transport and no storage, and log
 * no secret. A control of valid requests shows that a send that got through would be seen.
 */

const processFailures = recordProcessFailures();
const RUNS = Number(process.env.FUZZ_SEND_RUNS ?? 10_000);
const seedOptions = process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED), ...(process.env.FUZZ_PATH && { path: process.env.FUZZ_PATH }) };

const TENANT = 'contoso-api-tenant';
const AUDIENCE = 'api://m365-mail';
/** The smtp profile's own mailbox, which may also send as the graph profile's. */
const SMTP_MAILBOX = 'relay@contoso.com';
const HELPDESK_APP = '11111111-1111-1111-1111-111111111111';
const APP = { tenantId: 'contoso-tenant', clientId: 'mail-app', secret: `app-secret-${randomUUID()}` };
const KEYS: Record<'desk' | 'ops', string> = { desk: `desk-key-${randomUUID()}`, ops: `ops-key-${randomUUID()}` };

interface Tally {
  cases: number;
  answered4xx: number;
  answered5xx: number;
  reachedTransport: number;
  codes: Map<string, number>;
}

describe('POST /api/send under 10,000 generated invalid requests', () => {
  const azurite = new AzuritePeer();
  const entra = new TokenEndpointPeer();
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX, SMTP_MAILBOX] });
  const graph = new GraphPeer(entra);
  const logs: string[] = [];
  let dir: string;
  let runtime: MailRuntime;
  /** The credentials the generated cases name, made real. */
  const tokens = new Map<string, string>();
  const secrets: Record<string, string> = {};

  /** Everything a send that got through would leave at a transport: token requests, Graph requests, SMTP logins and messages. */
  const reached = () => entra.tokenRequests().length + graph.requests.length + smtp.authAttempts.length + smtp.messages.length;

  before(async () => {
    await Promise.all([azurite.start(), entra.start(), smtp.start(), graph.start()]);
    entra.register({ ...APP });
    graph.addMailbox(MAILBOX);
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-fuzz-send-'));
    const profile = (via: 'smtp' | 'graph') => ({
      mailbox: via === 'graph' ? MAILBOX : SMTP_MAILBOX,
      tenantId: APP.tenantId,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'mail-app-secret' },
      send: { via, allowedFrom: [MAILBOX, '*@desk.contoso.com', ...(via === 'smtp' ? [SMTP_MAILBOX] : [])] },
      endpoints: { authority: entra.url, smtp: smtp.endpoint, graph: graph.url },
    });
    const document = {
      callers: {
        desk: { keySecret: 'desk-caller-key', profiles: ['graph', 'smtp'], allowedFrom: [MAILBOX] },
        helpdesk: { entraAppId: HELPDESK_APP, profiles: ['graph'], roles: ['Mail.Send'] },
        ops: { keySecret: 'ops-caller-key', admin: true },
      },
      profiles: {
        graph: profile('graph'),
        smtp: profile('smtp'),
        [RECEIVE_ONLY_PROFILE]: { mailbox: 'archive@contoso.com', auth: { type: 'none' }, receive: { via: 'file', folder: path.join(dir, 'in'), deliver: { queue: { name: 'mail-in' } } } },
      },
    };
    runtime = new MailRuntime({
      env: {
        AzureWebJobsStorage: azurite.connectionString,
        MAIL_PROFILES: JSON.stringify(document),
        MAIL_APP_SECRET: APP.secret,
        DESK_CALLER_KEY: KEYS.desk,
        OPS_CALLER_KEY: KEYS.ops,
        AZURE_AUTHORITY_HOST: entra.url,
        API_TENANT_ID: TENANT,
        API_AUDIENCE: AUDIENCE,
        SEND_MAX_BYTES: '65536',
        SEND_MAX_RECIPIENTS: '20',
        SEND_MAX_ATTACHMENTS: '5',
        SEND_MAX_HEADERS: '10',
      },
      logger: capturingLogger(logs),
    });
    setRuntime(runtime);
    const token = (extra: Partial<Parameters<TokenEndpointPeer['apiToken']>[0]> = {}) => entra.apiToken({ tenantId: TENANT, clientId: HELPDESK_APP, audience: AUDIENCE, roles: ['Mail.Send'], ...extra });
    tokens.set('helpdesk', await token());
    const wrong: Record<(typeof WRONG_TOKENS)[number], string> = {
      'stranger-app': await token({ clientId: '99999999-9999-9999-9999-999999999999' }),
      expired: await token({ expiresInSeconds: -3600 }),
      'other-audience': await token({ audience: 'api://someone-else' }),
      'other-issuer': await token({ issuer: `${entra.url}/another-tenant/v2.0` }),
      'unpublished-key': await token({ signedBy: 'stranger' }),
      'without-role': await token({ roles: [] }),
      'not-a-jwt': 'not-a-token',
    };
    for (const [name, value] of Object.entries(wrong)) tokens.set(name, value);
    Object.assign(secrets, { 'the client secret': APP.secret, "desk's key": KEYS.desk, "ops's key": KEYS.ops, "helpdesk's token": tokens.get('helpdesk')! });
    for (const name of WRONG_TOKENS) if (name !== 'not-a-jwt') secrets[`the ${name} token`] = tokens.get(name)!;
  });

  after(async () => {
    setRuntime(undefined);
    await runtime.close();
    await Promise.all([azurite.stop(), entra.stop(), smtp.stop(), graph.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const wrongKey = (key: (typeof WRONG_KEYS)[number] | { literal: string }): string => {
    if (typeof key !== 'string') return key.literal;
    const desk = KEYS.desk;
    switch (key) {
      case 'desk-plus-one':
        return `${desk}x`;
      case 'desk-minus-one':
        return desk.slice(0, -1);
      case 'desk-one-changed':
        return `${desk.slice(0, 5)}${desk[5] === 'a' ? 'b' : 'a'}${desk.slice(6)}`;
      case 'client-secret':
        return APP.secret;
      case 'secret-name':
        return 'desk-caller-key';
      case 'empty':
        return '';
    }
  };

  const validCredential = (who: Who): Record<string, string> => (who === 'helpdesk' ? { authorization: `Bearer ${tokens.get('helpdesk')!}` } : { 'x-api-key': KEYS[who] });

  const credentialHeaders = (credential: Credential): Record<string, string> => {
    switch (credential.kind) {
      case 'as':
        return validCredential(credential.who);
      case 'none':
        return {};
      case 'key':
        return { 'x-api-key': wrongKey(credential.key) };
      case 'bearer':
        return { authorization: `Bearer ${tokens.get(credential.token)!}`, ...(credential.alsoKeyOf && validCredential(credential.alsoKeyOf)) };
      case 'authorization':
        return { authorization: credential.value };
    }
  };

  const toRequest = (c: Pick<SendCase, 'credential' | 'contentType' | 'query' | 'headers' | 'body'>): HttpRequest => {
    // Bytes, not a string: given a string, the Request the test mode builds sets Content-Type text/plain.
    const body = { bytes: 'bytes' in c.body ? c.body.bytes : Buffer.from('json' in c.body ? JSON.stringify(c.body.json) : c.body.text) };
    return new HttpRequest({
      method: 'POST',
      url: `http://localhost/api/send${c.query}`,
      body,
      headers: { ...(c.contentType !== undefined && { 'content-type': c.contentType }), ...credentialHeaders(c.credential), ...c.headers },
    });
  };

  const context = () => new InvocationContext({ invocationId: randomUUID(), functionName: 'send', logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) });

  const header = (response: HttpResponseInit, name: string) => {
    const headers = (response.headers ?? {}) as Record<string, string>;
    const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
    return key === undefined ? undefined : headers[key];
  };

  const tallies = new Map<Category, Tally>(CATEGORIES.map((c) => [c, { cases: 0, answered4xx: 0, answered5xx: 0, reachedTransport: 0, codes: new Map() }]));

  it('answers every one 4xx problem+json naming its code and field, sends nothing, stores nothing and logs no secret', async () => {
    try {
      await fc.assert(
        fc.asyncProperty(invalidCase, async (c) => {
          const tally = tallies.get(c.category)!;
          const reachedBefore = reached();
          const logged = logs.length;
          const response = await send(toRequest(c), context());
          const status = response.status ?? 200;
          const problem = typeof response.body === 'string' ? (JSON.parse(response.body) as Record<string, unknown>) : {};
          const sent = reached() !== reachedBefore;
          tally.cases++;
          if (status >= 400 && status < 500) tally.answered4xx++;
          if (status >= 500) tally.answered5xx++;
          if (sent) tally.reachedTransport++;
          tally.codes.set(String(problem.code), (tally.codes.get(String(problem.code)) ?? 0) + 1);

          assert.ok(status >= 400 && status < 500, `answered ${status} ${response.body as string}`);
          assert.equal(header(response, 'content-type'), 'application/problem+json');
          assert.ok(typeof problem.code === 'string' && problem.code in ERROR_CODES, `no known code: ${response.body as string}`);
          assert.equal(problem.status, status);
          assert.equal(sent, false, 'the request reached a transport');
          if (c.target !== undefined) {
            const field = problem.field;
            assert.ok(typeof field === 'string' && (field === c.target || field.startsWith(`${c.target}.`)), `the problem names field ${String(field)}, not ${c.target}: ${response.body as string}`);
          }
          if (c.category === 'caller credentials') {
            assert.ok(problem.code === 'EUNAUTHENTICATED' || problem.code === 'EFORBIDDEN', `a refused caller answered ${String(problem.code)}`);
            if (problem.code === 'EUNAUTHENTICATED') assert.ok(header(response, 'www-authenticate'), '401 without WWW-Authenticate');
          }
          const leaked = secretsIn([response.body as string, ...logs.slice(logged)].join('\n'), secrets);
          assert.deepEqual(leaked, [], `${leaked.join(', ')} in the answer or the log`);
        }),
        { numRuns: RUNS, includeErrorInReport: true, ...seedOptions },
      );
    } finally {
      const rows = CATEGORIES.map((c) => {
        const t = tallies.get(c)!;
        const codes = [...t.codes].sort((a, b) => b[1] - a[1]).map(([code, n]) => `${code} ${n}`).join(', ');
        return [c, t.cases, t.answered4xx, t.answered5xx, t.reachedTransport, codes];
      });
      const total = [...tallies.values()].reduce((sum, t) => ({ cases: sum.cases + t.cases, answered4xx: sum.answered4xx + t.answered4xx, answered5xx: sum.answered5xx + t.answered5xx, reachedTransport: sum.reachedTransport + t.reachedTransport }), { cases: 0, answered4xx: 0, answered5xx: 0, reachedTransport: 0 });
      rows.push(['total', total.cases, total.answered4xx, total.answered5xx, total.reachedTransport, `unhandled rejections ${processFailures.unhandledRejections.length}, uncaught exceptions ${processFailures.uncaughtExceptions.length}`]);
      console.log(`\nPOST /api/send fuzz summary (${logs.length} log lines captured)\n${table(['category', 'cases', '4xx', '5xx', 'reached transport', 'codes'], rows)}\n`);
    }
    const total = [...tallies.values()].reduce((sum, t) => sum + t.cases, 0);
    assert.equal(total, RUNS);
    for (const [category, t] of tallies) assert.ok(t.cases > RUNS / CATEGORIES.length / 2, `${category}: only ${t.cases} cases`);
  });

  it('stored nothing: no blob, queue message or table row in the state storage', async () => {
    const connection = azurite.connectionString;
    const blobs = BlobServiceClient.fromConnectionString(connection);
    for await (const container of blobs.listContainers()) {
      for await (const blob of blobs.getContainerClient(container.name).listBlobsFlat()) assert.fail(`blob ${container.name}/${blob.name}`);
    }
    const queues = QueueServiceClient.fromConnectionString(connection);
    for await (const queue of queues.listQueues()) {
      const { approximateMessagesCount } = await queues.getQueueClient(queue.name).getProperties();
      assert.equal(approximateMessagesCount, 0, `queue ${queue.name}`);
    }
    const tables = TableServiceClient.fromConnectionString(connection, { allowInsecureConnection: true });
    for await (const t of tables.listTables()) {
      for await (const row of TableClient.fromConnectionString(connection, t.name!, { allowInsecureConnection: true }).listEntities()) assert.fail(`row ${t.name!}/${row.partitionKey}/${row.rowKey}`);
    }
  });

  it('the control: valid requests of the same shapes are sent, or queued, and each is seen where it went; no secret logged', async () => {
    // One sent now per profile (each its own mailbox, so no send rate is met): the peers see them.
    for (const profile of ['graph', 'smtp'] as const) {
      const before = { graph: graph.sent.length, smtp: smtp.messages.length };
      const logged = logs.length;
      const response = await send(toRequest({ credential: { kind: 'as', who: 'ops' }, query: '', headers: {}, body: { json: { profile, to: 'ada@example.com', subject: 'control', text: 'hello' } } }), context());
      assert.equal(response.status, 200, `${response.body as string}\n${logs.slice(logged).join('\n')}`);
      assert.deepEqual({ graph: graph.sent.length, smtp: smtp.messages.length }, { ...before, [profile]: before[profile] + 1 });
    }
    // Generated valid requests, queued: each leaves one message on the send queue.
    const queue = QueueServiceClient.fromConnectionString(azurite.connectionString).getQueueClient(SEND_QUEUE);
    const queued = async () => ((await queue.exists()) ? ((await queue.getProperties()).approximateMessagesCount ?? 0) : 0);
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(validCase, async (v) => {
        const before = await queued();
        const logged = logs.length;
        const response = await send(toRequest({ credential: { kind: 'as', who: v.who }, ...(v.contentType !== undefined && { contentType: v.contentType }), query: '?mode=queued', headers: v.headers, body: { json: v.body } }), context());
        assert.equal(response.status, 202, response.body as string);
        assert.equal(await queued(), before + 1);
        accepted++;
        assert.deepEqual(secretsIn(logs.slice(logged).join('\n'), secrets), []);
      }),
      { numRuns: 30, includeErrorInReport: true },
    );
    assert.equal(accepted, 30);
  });

  it('nothing escaped a handler: no unhandled rejection, no uncaught exception', () => {
    assert.deepEqual(processFailures, { unhandledRejections: [], uncaughtExceptions: [] });
  });
});
