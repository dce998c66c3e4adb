/**
 * Ingest throughput of a poll: N messages (default 2,000) from the loopback IMAP server
 * through our whole poll (ImapReader + parser + dedupe table + queue sink, state in Azurite),
 * through our reader + parser alone, and, in the same run, raw imapflow fetching the same
 * messages' sources; with the ratios. Then the peak RSS while one poll ingests a message with a
 * 50 MB attachment (streamed to blob), from the file inbox (our code alone) and over IMAP.
 * Figures, never assertions.
 * Usage: npm run bench:poll -- [--n 2000] [--large-mb 50]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import MailComposer from 'nodemailer/lib/mail-composer';
import { exchangeScope } from '../shared/config/cloud.js';
import { silentLogger } from '../shared/log.js';
import { parseMessage } from '../shared/mail/parse.js';
import { pollMailbox } from '../shared/receive/pollMailbox.js';
import { MailRuntime } from '../shared/runtime.js';
import { receiveState } from '../shared/state/index.js';
import { createReader } from '../shared/transports/index.js';
import { AzuritePeer } from '../test/peers/azurite.js';
import { ImapPeer } from '../test/peers/imapPeer.js';
import { createTestCa } from '../test/peers/testCa.js';
import { TokenEndpointPeer } from '../test/peers/tokenEndpoint.js';

const MAILBOX = 'bench@contoso.com';
const APP = { tenantId: 'bench-tenant', clientId: 'bench-app', secret: 'bench-secret-value' };

/** Node reads NODE_EXTRA_CA_CERTS only at start-up: make the test CA, then run this file again with it trusted. */
async function reexecWithTestCa(): Promise<number> {
  const ca = await createTestCa();
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ...ca.env, NO_PROXY: '127.0.0.1,localhost' };
    for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY']) delete env[k];
    return spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], { stdio: 'inherit', env }).status ?? 1;
  } finally {
    ca.dispose();
  }
}

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

function runtimeFor(name: string, imapEndpoint: string, authority: string, storage: string): MailRuntime {
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

async function peakRss<T>(run: () => Promise<T>): Promise<{ result: T; baseline: number; peak: number; seconds: number }> {
  (globalThis as { gc?: () => void }).gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 10);
  const started = performance.now();
  const result = await run();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  return { result, baseline, peak: Math.max(peak, process.memoryUsage().rss), seconds };
}

async function bench(n: number, largeMb: number): Promise<void> {
  const entra = await new TokenEndpointPeer().start();
  entra.register(APP);
  const imap = await new ImapPeer(entra, { mailbox: MAILBOX }).start();
  const azurite = new AzuritePeer();
  await azurite.start();
  try {
    for (let i = 0; i < n; i++) imap.append('INBOX', await compose(i));
    const storage = azurite.connectionString;

    // Our full poll, in batches of 1,000 (the batchSize maximum), state and queue in Azurite.
    const full = runtimeFor('full', imap.endpoint, entra.url, storage);
    await receiveState(full.env).account.queue('bench-full');
    let started = performance.now();
    let delivered = 0;
    for (;;) {
      const result = await pollMailbox(full, 'full');
      if (result.status !== 'completed') throw new Error(`poll ${result.status}: ${result.error?.message ?? ''}`);
      if (result.delivered === 0) break;
      delivered += result.delivered;
    }
    const fullRate = delivered / ((performance.now() - started) / 1000);

    // Our reader and parser alone: what the transport and the normalization cost.
    const readerOnly = runtimeFor('reader', imap.endpoint, entra.url, storage);
    const profile = readerOnly.profile('reader');
    const reader = createReader(profile, { tokens: readerOnly.tokens(profile), logger: silentLogger });
    started = performance.now();
    const session = await reader.open();
    let parsed = 0;
    for await (const fetched of session.messages(undefined, { limit: n })) {
      await parseMessage(await fetched.openSource(), { profile, via: 'imap', providerId: fetched.providerId });
      parsed++;
    }
    await session.close();
    const readerRate = parsed / ((performance.now() - started) / 1000);

    // The parser alone over the same sources, from memory: splits the reader's cost from the parser's.
    const sources = imap.messages('INBOX').map((m) => m.raw);
    started = performance.now();
    for (const [i, source] of sources.entries()) await parseMessage(source, { profile, via: 'imap', providerId: String(i) });
    const parserRate = sources.length / ((performance.now() - started) / 1000);

    // Raw imapflow: one connection, the same token, every source in one UID FETCH.
    const { ImapFlow } = require('imapflow') as typeof import('imapflow');
    const [host, port] = imap.endpoint.split(':');
    const token = await readerOnly.tokens(profile).getToken(exchangeScope(profile.endpoints));
    started = performance.now();
    const client = new ImapFlow({ host: host!, port: Number(port), secure: true, auth: { user: MAILBOX, accessToken: token }, logger: false });
    await client.connect();
    await client.mailboxOpen('INBOX');
    let fetchedRaw = 0;
    for await (const message of client.fetch('1:*', { uid: true, source: true })) if (message.source) fetchedRaw++;
    await client.logout();
    const rawRate = fetchedRaw / ((performance.now() - started) / 1000);

    console.log(`bench/poll: ${n} messages (~${Math.round(imap.messages('INBOX')[0]!.raw.length / 1024)} KiB each) from the loopback IMAP server (TLS, XOAUTH2)`);
    console.log(`  pollMailbox (reader + parser + dedupe + queue sink, Azurite): ${fullRate.toFixed(0)} messages/s (${delivered} delivered)`);
    console.log(`  ImapReader + parser only:                                  ${readerRate.toFixed(0)} messages/s (${parsed} parsed)`);
    console.log(`  parser alone (sources in memory):                          ${parserRate.toFixed(0)} messages/s`);
    console.log(`  raw imapflow fetch of the sources:                         ${rawRate.toFixed(0)} messages/s (${fetchedRaw} fetched)`);
    console.log(`  ratio reader+parser/raw: ${(readerRate / rawRate).toFixed(2)}, full poll/raw: ${(fullRate / rawRate).toFixed(2)}`);

    const payload = Buffer.alloc(largeMb * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4096) payload[i] = i % 251;
    const largeSource = await compose(n + 1, payload);
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

    // Peak RSS while the file reader's poll ingests it: our code alone, the source read from disk.
    const inbox = mkdtempSync(path.join(os.tmpdir(), 'bench-poll-'));
    writeFileSync(path.join(inbox, 'large.eml'), largeSource);
    const fileRuntime = new MailRuntime({
      env: { AzureWebJobsStorage: storage, MAIL_PROFILES: JSON.stringify({ profiles: { file: { mailbox: MAILBOX, auth: { type: 'none' }, receive: { via: 'file', folder: inbox, deliver: { queue: { name: 'bench-file' } } } } } }) },
      logger: silentLogger,
    });
    const fromFile = await peakRss(() => pollMailbox(fileRuntime, 'file'));
    rmSync(inbox, { recursive: true, force: true });
    console.log(`  one message with a ${largeMb} MB attachment, file inbox: ${fromFile.result.status}, ${fromFile.result.delivered} delivered in ${fromFile.seconds.toFixed(1)} s; RSS ${mb(fromFile.baseline)} MB before, peak ${mb(fromFile.peak)} MB (+${mb(fromFile.peak - fromFile.baseline)} MB)`);

    // Peak RSS while polling one message with a large attachment. The IMAP peer runs in this
    // process and keeps the message in memory, so the baseline is taken after it holds it; what
    // the peer allocates to serve it is still inside the peak.
    const largeBox = new ImapPeer(entra, { mailbox: MAILBOX });
    await largeBox.start();
    largeBox.append('INBOX', largeSource);
    const largeRuntime = runtimeFor('large', largeBox.endpoint, entra.url, storage);
    const overImap = await peakRss(() => pollMailbox(largeRuntime, 'large'));
    await largeBox.stop();
    console.log(`  the same over IMAP (peer in this process, its serving included): ${overImap.result.status}, ${overImap.result.delivered} delivered in ${overImap.seconds.toFixed(1)} s; RSS ${mb(overImap.baseline)} MB before, peak ${mb(overImap.peak)} MB (+${mb(overImap.peak - overImap.baseline)} MB)`);
  } finally {
    await imap.stop();
    await azurite.stop();
    await entra.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '2000' }, 'large-mb': { type: 'string', default: '50' } } });
  const n = Number(values.n);
  const largeMb = Number(values['large-mb']);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer, got ${values.n}`);
  if (!Number.isInteger(largeMb) || largeMb < 1) throw new Error(`--large-mb must be a positive integer, got ${values['large-mb']}`);
  if (!process.env.TEST_TLS_DIR) {
    process.exitCode = await reexecWithTestCa();
    return;
  }
  await bench(n, largeMb);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
