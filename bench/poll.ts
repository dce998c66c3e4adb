/**
 * Ingest throughput of a poll: N messages (default 2,000) from the loopback IMAP server
 * through our whole poll (ImapReader + parser + dedupe table + queue sink, state in Azurite),
 * through our reader + parser alone, through the parser alone, raw imapflow fetching the same
 * messages' sources, and the pipeline a typical integration writes from the same libraries
 * (imapflow fetch + mailparser simpleParser + one QueueClient.sendMessage per message, to the same
 * Azurite); with the ratios.
 * Then what a Graph poll costs in requests at the Graph stand-in (issue 11, item 3): requests per
 * delivered message over G messages (default 500, afterFetch markRead, so the $batch requests
 * count too) and per poll of an unchanged mailbox. Every path runs once on a small mailbox first, so
 * each is measured warm (JIT, SDK modules loaded, connections and tables made), over the same
 * messages, in the same process, against the same in-process peer.
 * Then the peak RSS of a poll ingesting one message with a 50 MB attachment (streamed to blob),
 * each in a fresh process whose only work is that poll: from the file inbox, and over IMAP
 * with the IMAP server in a process of its own, so its copy of the message is not counted.
 * Figures, never assertions.
 * Usage: npm run bench:poll -- [--n 2000] [--rounds 3] [--graph-n 500] [--large-mb 50]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import MailComposer from 'nodemailer/lib/mail-composer';
import { exchangeScope } from '../shared/config/cloud.js';
import { silentLogger } from '../shared/log.js';
import { parseMessage } from '../shared/mail/parse.js';
import { pollMailbox } from '../shared/receive/pollMailbox.js';
import { MailRuntime } from '../shared/runtime.js';

import { STATE_NAMES } from '../shared/state/storage.js';
import { createReader } from '../shared/transports/index.js';
import { AzuritePeer } from '../test/peers/azurite.js';
import { GraphPeer } from '../test/peers/graphPeer.js';
import { ImapPeer } from '../test/peers/imapPeer.js';
import { rerunWithTestCa } from '../test/peers/testCa.js';
import { TokenEndpointPeer } from '../test/peers/tokenEndpoint.js';

const MAILBOX = 'bench@contoso.com';
const APP = { tenantId: 'bench-tenant', clientId: 'bench-app', secret: 'bench-secret-value' };
const WARM_UP_MESSAGES = 200;

function compose(i: number, attachment?: Buffer): Promise<Buffer> {
  return new MailComposer({
    from: `Customer ${i} <customer${i}@fabrikam.com>`,
    to: MAILBOX,
    subject: `Ticket ${i}: printer on floor ${i % 7} is jammed`,
    text: `Hello,\n\nticket ${i}. ${'The printer shows error 50.4 again. '.repeat(8)}\n\nRegards`,
    html: `<p>Hello,</p><p>ticket <b>${i}</b>.</p>`,
    messageId: `<bench-${i}@fabrikam.com>`,
    date: new Date(Date.UTC(2024, 2, 1, 9, 0, i)),
    ...(attachment && { attachments: [{ filename: 'capture.bin', content: attachment, contentType: 'application/octet-stream' }] }),
  }).compile().build();
}

function largeSource(mb: number): Promise<Buffer> {
  const payload = Buffer.alloc(mb * 1024 * 1024);
  for (let i = 0; i < payload.length; i += 4096) payload[i] = i % 251;
  return compose(0, payload);
}

function imapRuntime(name: string, imapEndpoint: string, authority: string, storage: string): MailRuntime {
  return new MailRuntime({
    env: {
      AzureWebJobsStorage: storage,
      MAIL_PROFILES: JSON.stringify({ profiles: { [name]: {
        mailbox: MAILBOX, tenantId: APP.tenantId, clientId: APP.clientId,
        auth: { type: 'clientSecret', secret: 'bench-client-secret' },
        receive: { via: 'imap', batchSize: 1000, deliver: { queue: { name: `bench-${name}` } } },
        endpoints: { authority, imap: imapEndpoint },
      } } }),
      BENCH_CLIENT_SECRET: APP.secret,
    },
    logger: silentLogger,
  });
}

/** Messages per second of `run`, which answers how many messages it handled. */
async function rate(run: () => Promise<number>): Promise<{ count: number; perSecond: number }> {
  const started = performance.now();
  const count = await run();
  return { count, perSecond: count / ((performance.now() - started) / 1000) };
}

interface Target {
  imap: ImapPeer;
  entra: TokenEndpointPeer;
  storage: string;
}

let profiles = 0;

/** Our full poll under a fresh profile (its own cursor, dedupe partition and queue), in batches of 1,000 (the batchSize maximum). */
async function fullPoll({ imap, entra, storage }: Target): Promise<number> {
  const name = `full${++profiles}`;
  const runtime = imapRuntime(name, imap.endpoint, entra.url, storage);
  let delivered = 0;
  for (;;) {
    const result = await pollMailbox(runtime, name);
    if (result.status !== 'completed') throw new Error(`poll ${result.status}: ${result.error?.message ?? ''}`);
    if (result.delivered === 0) return delivered;
    delivered += result.delivered;
  }
}

/** Our reader and parser alone: what the transport and the normalization cost. */
async function readerAndParser({ imap, entra, storage }: Target): Promise<number> {
  const runtime = imapRuntime('reader', imap.endpoint, entra.url, storage);
  const profile = runtime.profile('reader');
  const session = await createReader(profile, { tokens: runtime.tokens(profile), logger: silentLogger }).open();
  let parsed = 0;
  for await (const fetched of session.messages(undefined, { limit: imap.messages('INBOX').length })) {
    await parseMessage(await fetched.openSource(), { profile, via: 'imap', providerId: fetched.providerId });
    parsed++;
  }
  await session.close();
  return parsed;
}

/** The parser alone over the same sources, from memory: splits the reader's cost from the parser's. */
async function parserAlone({ imap }: Target): Promise<number> {
  const profile = { name: 'parser', mailbox: MAILBOX };
  const sources = imap.messages('INBOX').map((m) => m.raw);
  for (const [i, source] of sources.entries()) await parseMessage(source, { profile, via: 'imap', providerId: String(i) });
  return sources.length;
}

/** Raw imapflow: one connection, the same kind of token, every source in one FETCH. */
async function rawFetch({ imap, entra, storage }: Target): Promise<number> {
  const runtime = imapRuntime('raw', imap.endpoint, entra.url, storage);
  const profile = runtime.profile('raw');
  const token = await runtime.tokens(profile).getToken(exchangeScope(profile.endpoints));
  const { ImapFlow } = require('imapflow') as typeof import('imapflow');
  const [host, port] = imap.endpoint.split(':');
  const client = new ImapFlow({ host: host!, port: Number(port), secure: true, auth: { user: MAILBOX, accessToken: token }, logger: false });
  await client.connect();
  await client.mailboxOpen('INBOX');
  let fetched = 0;
  for await (const message of client.fetch('1:*', { uid: true, source: true })) if (message.source) fetched++;
  await client.logout();
  return fetched;
}

/**
 * What a user would otherwise write with the same libraries, as their READMEs show them: one
 * imapflow connection fetching every source, mailparser's simpleParser on each, and one
 * QueueClient.sendMessage per message of the parsed fields as JSON. No cursor, dedupe, lease,
 * afterFetch, claim check or attachment handling: the comparison is with what it leaves out.
 */
async function naivePipeline({ imap, entra, storage }: Target): Promise<number> {
  const runtime = imapRuntime('naive', imap.endpoint, entra.url, storage);
  const profile = runtime.profile('naive');
  const token = await runtime.tokens(profile).getToken(exchangeScope(profile.endpoints));
  const { ImapFlow } = require('imapflow') as typeof import('imapflow');
  const { simpleParser } = require('mailparser') as typeof import('mailparser');
  const { QueueClient } = require('@azure/storage-queue') as typeof import('@azure/storage-queue');
  const queue = new QueueClient(storage, `bench-naive${++profiles}`);
  await queue.createIfNotExists();
  const [host, port] = imap.endpoint.split(':');
  const client = new ImapFlow({ host: host!, port: Number(port), secure: true, auth: { user: MAILBOX, accessToken: token }, logger: false });
  await client.connect();
  await client.mailboxOpen('INBOX');
  let sent = 0;
  for await (const message of client.fetch('1:*', { uid: true, source: true })) {
    if (!message.source) continue;
    const mail = await simpleParser(message.source);
    const json = JSON.stringify({ uid: message.uid, messageId: mail.messageId, date: mail.date, from: mail.from?.value, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html || undefined });
    await queue.sendMessage(Buffer.from(json).toString('base64'));
    sent++;
  }
  await client.logout();
  return sent;
}

async function mailboxWith(entra: TokenEndpointPeer, count: number): Promise<ImapPeer> {
  const imap = await new ImapPeer(entra, { mailbox: MAILBOX }).start();
  for (let i = 0; i < count; i++) imap.append('INBOX', await compose(i));
  return imap;
}

async function throughput(n: number, roundCount: number, storage: string): Promise<void> {
  const entra = await new TokenEndpointPeer().start();
  entra.register(APP);
  const warm = await mailboxWith(entra, WARM_UP_MESSAGES);
  const measured = await mailboxWith(entra, n);
  try {
    const paths = [fullPoll, readerAndParser, parserAlone, rawFetch, naivePipeline];
    for (const run of paths) await run({ imap: warm, entra, storage });
    const target = { imap: measured, entra, storage };
    // Rounds of every path in turn, each figure the median of its rounds: a machine's other work
    // then weighs on all paths alike instead of on whichever ran while it was busy.
    const rounds: Array<Array<{ count: number; perSecond: number }>> = paths.map(() => []);
    for (let round = 0; round < roundCount; round++) {
      for (const [i, run] of paths.entries()) rounds[i]!.push(await rate(() => run(target)));
    }
    const median = (results: Array<{ count: number; perSecond: number }>) => [...results].sort((a, b) => a.perSecond - b.perSecond)[Math.floor((results.length - 1) / 2)]!;
    const [full, reader, parser, raw, naive] = rounds.map(median) as [ReturnType<typeof median>, ReturnType<typeof median>, ReturnType<typeof median>, ReturnType<typeof median>, ReturnType<typeof median>];
    console.log(`bench/poll: ${n} messages (~${Math.round(measured.messages('INBOX')[0]!.raw.length / 1024)} KiB each) from the loopback IMAP server (TLS, XOAUTH2), each path warmed up on ${WARM_UP_MESSAGES} others first, median of ${roundCount} rounds of every path in turn`);
    console.log(`  pollMailbox (reader + parser + dedupe + queue sink, Azurite): ${full.perSecond.toFixed(0)} messages/s (${full.count} delivered)`);
    console.log(`  ImapReader + parser only:                                  ${reader.perSecond.toFixed(0)} messages/s (${reader.count} parsed)`);
    console.log(`  parser alone (sources in memory):                          ${parser.perSecond.toFixed(0)} messages/s`);
    console.log(`  raw imapflow fetch of the sources:                         ${raw.perSecond.toFixed(0)} messages/s (${raw.count} fetched)`);
    console.log(`  naive pipeline (imapflow fetch + simpleParser + one QueueClient.sendMessage each): ${naive.perSecond.toFixed(0)} messages/s (${naive.count} sent)`);
    console.log(`  ratio reader+parser/raw: ${(reader.perSecond / raw.perSecond).toFixed(2)}, full poll/raw: ${(full.perSecond / raw.perSecond).toFixed(2)}, full poll/naive pipeline: ${(full.perSecond / naive.perSecond).toFixed(2)}`);
  } finally {
    await Promise.all([warm.stop(), measured.stop()]);
    await entra.stop();
  }
}

/**
 * Requests at the Graph stand-in (every HTTP request reaching it; a $batch is one, its changes
 * counted apart): a poll of `count` new messages with afterFetch markRead, polled until none is
 * left, then polls of the unchanged mailbox.
 */
async function graphCost(count: number, storage: string): Promise<void> {
  const entra = await new TokenEndpointPeer().start();
  entra.register(APP);
  const graph = await new GraphPeer(entra).start();
  try {
    graph.addMailbox(MAILBOX);
    for (let i = 0; i < count; i++) graph.mail.addMessage(MAILBOX, 'inbox', await compose(i), { receivedAt: new Date(Date.UTC(2024, 2, 1, 9, 0, i)) });
    const name = 'graphcost';
    const runtime = new MailRuntime({
      env: {
        AzureWebJobsStorage: storage,
        MAIL_PROFILES: JSON.stringify({ profiles: { [name]: {
          mailbox: MAILBOX, tenantId: APP.tenantId, clientId: APP.clientId,
          auth: { type: 'clientSecret', secret: 'bench-client-secret' },
          receive: { via: 'graph', afterFetch: 'markRead', batchSize: 1000, deliver: { queue: { name: 'bench-graph' } } },
          endpoints: { authority: entra.url, graph: graph.url },
        } } }),
        BENCH_CLIENT_SECRET: APP.secret,
      },
      logger: silentLogger,
    });
    const from = graph.requests.length;
    const batchedFrom = graph.batched.length;
    let delivered = 0;
    let polls = 0;
    for (;;) {
      const result = await pollMailbox(runtime, name);
      polls++;
      if (result.status !== 'completed') throw new Error(`poll ${result.status}: ${result.error?.message ?? ''}`);
      if (result.delivered === 0) break;
      delivered += result.delivered;
    }
    const requests = graph.requests.slice(from);
    const kind = (path: string) => (path.endsWith('/messages/delta') ? 'delta' : path.endsWith('/$value') ? '$value' : path.endsWith('/$batch') ? '$batch' : 'other');
    const counts = new Map<string, number>();
    for (const r of requests) counts.set(kind(r.path), (counts.get(kind(r.path)) ?? 0) + 1);
    const idleFrom = graph.requests.length;
    const idlePolls = 5;
    for (let i = 0; i < idlePolls; i++) await pollMailbox(runtime, name);
    const idle = (graph.requests.length - idleFrom) / idlePolls;
    console.log(`  Graph stand-in, ${delivered} new messages (afterFetch markRead) in ${polls} polls, the last one finding nothing: ${requests.length} requests, ${(requests.length / delivered).toFixed(3)} per delivered message`);
    console.log(`    delta pages ${counts.get('delta') ?? 0}, $value ${counts.get('$value') ?? 0}, $batch ${counts.get('$batch') ?? 0} (holding ${graph.batched.length - batchedFrom} changes), other ${counts.get('other') ?? 0}`);
    console.log(`    a poll of the unchanged mailbox: ${idle} request(s) (mean of ${idlePolls})`);
  } finally {
    await graph.stop();
    await entra.stop();
  }
}

/** What a measuring child process reports. */
interface LargePollReport {
  status: string;
  delivered: number;
  seconds: number;
  /** RSS once everything the poll needs is loaded, right before it starts. */
  baselineBytes: number;
  /**
   * Peak RSS during the poll, sampled every 5 ms. Not getrusage's maxrss: Linux carries that
   * across exec from the parent, so a child of this (large) bench process would report ours.
   */
  peakBytes: number;
}

/** Child mode `--serve-large MB`: an IMAP server (and its token endpoint) holding one large message, in a process of its own. */
async function serveLarge(mb: number): Promise<void> {
  const entra = await new TokenEndpointPeer().start();
  entra.register(APP);
  const imap = await new ImapPeer(entra, { mailbox: MAILBOX }).start();
  imap.append('INBOX', await largeSource(mb));
  console.log(JSON.stringify({ imap: imap.endpoint, authority: entra.url }));
  // The parent closes stdin when it is done with this server.
  for await (const line of createInterface({ input: process.stdin })) void line;
  await imap.stop();
  await entra.stop();
}

/** Child mode `--poll-large`: one poll of the profile in BENCH_LARGE, in a process that does nothing else. */
async function pollLarge(): Promise<void> {
  const { name, profile, storage, imapSecret } = JSON.parse(process.env.BENCH_LARGE ?? '{}') as { name: string; profile: Record<string, unknown>; storage: string; imapSecret?: string };
  const runtime = new MailRuntime({
    env: { AzureWebJobsStorage: storage, MAIL_PROFILES: JSON.stringify({ profiles: { [name]: profile } }), ...(imapSecret && { BENCH_CLIENT_SECRET: imapSecret }) },
    logger: silentLogger,
  });
  // Load what the poll loads (SDKs, tables, containers), so the baseline holds the code and only the message makes the difference.
  const state = runtime.state.receive;
  await Promise.all([state.account.table(STATE_NAMES.cursors), state.account.table(STATE_NAMES.delivered), state.account.container(STATE_NAMES.payloads), state.account.container(STATE_NAMES.leases)]);
  require('mailparser');
  require('imapflow');
  (globalThis as { gc?: () => void }).gc?.();
  const baselineBytes = process.memoryUsage.rss();
  let peakBytes = baselineBytes;
  const sampler = setInterval(() => {
    peakBytes = Math.max(peakBytes, process.memoryUsage.rss());
  }, 5);
  const started = performance.now();
  const result = await pollMailbox(runtime, name);
  clearInterval(sampler);
  const report: LargePollReport = {
    status: result.status === 'completed' ? result.status : `${result.status}: ${result.error?.message ?? ''}`,
    delivered: result.delivered,
    seconds: (performance.now() - started) / 1000,
    baselineBytes,
    peakBytes: Math.max(peakBytes, process.memoryUsage.rss()),
  };
  console.log(JSON.stringify(report));
}

function runChild(args: string[], env: NodeJS.ProcessEnv): Promise<LargePollReport> {
  const child = spawn(process.execPath, ['--expose-gc', __filename, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(output.trim().split('\n').at(-1)!) as LargePollReport) : reject(new Error(`the measuring process exited with ${code}`))));
  });
}

async function largeMessage(mb: number, storage: string): Promise<void> {
  const inbox = mkdtempSync(path.join(os.tmpdir(), 'bench-poll-'));
  const server = spawn(process.execPath, [__filename, '--serve-large', String(mb)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const serving = new Promise<string>((resolve) => createInterface({ input: server.stdout }).once('line', resolve));
  try {
    writeFileSync(path.join(inbox, 'large.eml'), await largeSource(mb));
    const fromFile = await runChild(['--poll-large'], {
      BENCH_LARGE: JSON.stringify({ name: 'largefile', storage, profile: { mailbox: MAILBOX, auth: { type: 'none' }, receive: { via: 'file', folder: inbox, deliver: { queue: { name: 'bench-large-file' } } } } }),
    });
    const { imap, authority } = JSON.parse(await serving) as { imap: string; authority: string };
    const overImap = await runChild(['--poll-large'], {
      BENCH_LARGE: JSON.stringify({
        name: 'largeimap',
        storage,
        imapSecret: APP.secret,
        profile: {
          mailbox: MAILBOX, tenantId: APP.tenantId, clientId: APP.clientId,
          auth: { type: 'clientSecret', secret: 'bench-client-secret' },
          receive: { via: 'imap', deliver: { queue: { name: 'bench-large-imap' } } },
          endpoints: { authority, imap },
        },
      }),
    });
    const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    const describe = (r: LargePollReport) =>
      `${r.status}, ${r.delivered} delivered in ${r.seconds.toFixed(1)} s; RSS ${mib(r.baselineBytes)} MiB before the poll, peak ${mib(r.peakBytes)} MiB (+${mib(r.peakBytes - r.baselineBytes)} MiB)`;
    console.log(`  one message with a ${mb} MB attachment (a fresh process each, doing only that poll):`);
    console.log(`    from the file inbox: ${describe(fromFile)}`);
    console.log(`    over IMAP (the server in another process): ${describe(overImap)}`);
  } finally {
    server.stdin.end();
    rmSync(inbox, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { n: { type: 'string', default: '2000' }, rounds: { type: 'string', default: '3' }, 'graph-n': { type: 'string', default: '500' }, 'large-mb': { type: 'string', default: '50' }, 'serve-large': { type: 'string' }, 'poll-large': { type: 'boolean' } },
  });
  if (values['serve-large'] !== undefined) return serveLarge(Number(values['serve-large']));
  if (values['poll-large']) return pollLarge();
  const n = Number(values.n);
  const largeMb = Number(values['large-mb']);
  const graphN = Number(values['graph-n']);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
  if (!Number.isInteger(graphN) || graphN < 1) throw new Error(`--graph-n must be a positive integer, got ${values['graph-n']}`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer, got ${values.n}`);
  if (!Number.isInteger(largeMb) || largeMb < 1) throw new Error(`--large-mb must be a positive integer, got ${values['large-mb']}`);
  if (!process.env.TEST_TLS_DIR) {
    process.exitCode = await rerunWithTestCa(__filename, process.argv.slice(2));
    return;
  }
  const azurite = new AzuritePeer();
  await azurite.start();
  try {
    await throughput(n, rounds, azurite.connectionString);
    await graphCost(graphN, azurite.connectionString);
    await largeMessage(largeMb, azurite.connectionString);
  } finally {
    await azurite.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
