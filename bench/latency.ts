/**
 * Arrival-to-sink time (issue 11, item 4): from the moment a message lands in the mailbox at the
 * loopback stand-in (IMAP server, Graph stand-in) to the moment the signed webhook has its POST,
 * p50 and max over a set of messages that arrive at random times, for the timer poll run on a
 * schedule. The interval is scaled down (default 2 s for the default schedule's 60 s) so that a run
 * takes a minute; what a poll takes is not scaled, so the figure for the default schedule is the
 * measured wait scaled up plus the measured poll, printed beside it. Figures, never assertions.
 * Not measured: the hop from the timer to pollWorker through the mail-poll queue (host.json's
 * maxPollingInterval, 2 s, bounds its wait on an idle queue), and push (below).
 * Usage: npm run bench:latency -- [--messages 20] [--interval-ms 2000]
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import MailComposer from 'nodemailer/lib/mail-composer';
import { silentLogger } from '../shared/log.js';
import { pollMailbox } from '../shared/receive/pollMailbox.js';
import { MailRuntime } from '../shared/runtime.js';
import { AzuritePeer } from '../test/peers/azurite.js';
import { GraphPeer } from '../test/peers/graphPeer.js';
import { ImapPeer } from '../test/peers/imapPeer.js';
import { rerunWithTestCa } from '../test/peers/testCa.js';
import { TokenEndpointPeer } from '../test/peers/tokenEndpoint.js';
import { WebhookReceiverPeer } from '../test/peers/webhookReceiver.js';

const MAILBOX = 'latency@contoso.com';
const APP = { tenantId: 'bench-tenant', clientId: 'bench-app', secret: 'bench-secret-value' };
/** The timer's default schedule (POLL_SCHEDULE unset): every minute. */
const DEFAULT_INTERVAL_MS = 60_000;

const now = () => performance.timeOrigin + performance.now();

function compose(label: string): Promise<Buffer> {
  return new MailComposer({ from: 'customer@fabrikam.com', to: MAILBOX, subject: label, text: `Message ${label}`, messageId: `<${label.replace(/\s+/g, '-')}@fabrikam.com>` }).compile().build();
}

interface Transport {
  name: string;
  receive: Record<string, unknown>;
  endpoints: Record<string, string>;
  deliver(raw: Buffer): void;
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? NaN;
}

interface TimerFigures {
  latencies: number[];
  polls: number[];
}

/**
 * Polls on a schedule (ticks at multiples of the interval from the start; a tick that comes while a
 * poll runs is skipped, as the Functions timer does not overlap itself) while `messages` arrive at
 * uniformly random times over the run; answers each message's arrival-to-webhook time and how long
 * each poll that delivered took.
 */
async function timerPath(transport: Transport, options: { messages: number; intervalMs: number; storage: string; authority: string; webhook: WebhookReceiverPeer }): Promise<TimerFigures> {
  const name = `latency${transport.name}`;
  const runtime = new MailRuntime({
    env: {
      AzureWebJobsStorage: options.storage,
      HOOK_SIGNING_KEY: 'latency-hook-key',
      MAIL_PROFILES: JSON.stringify({ profiles: { [name]: {
        mailbox: MAILBOX, tenantId: APP.tenantId, clientId: APP.clientId,
        auth: { type: 'clientSecret', secret: 'bench-client-secret' },
        receive: { ...transport.receive, deliver: { webhook: { url: options.webhook.url, signingSecret: 'hook-signing-key' } } },
        endpoints: { authority: options.authority, ...transport.endpoints },
      } } }),
      BENCH_CLIENT_SECRET: APP.secret,
    },
    logger: silentLogger,
  });
  // Warm: the first poll loads the SDKs and makes the tables, which no later tick pays again.
  await pollMailbox(runtime, name);
  options.webhook.reset();
  const span = Math.max(1, Math.ceil(options.messages / 2)) * options.intervalMs;
  const arrivals = new Map<string, number>();
  const sources = await Promise.all(Array.from({ length: options.messages }, (_, i) => compose(`latency ${transport.name} ${i}`)));
  const arriving = sources.map(async (raw, i) => {
    await sleep(Math.random() * span);
    arrivals.set(`latency ${transport.name} ${i}`, now());
    transport.deliver(raw);
  });
  const polls: number[] = [];
  const started = now();
  const deadline = started + span + 10 * options.intervalMs;
  while (options.webhook.accepted().length < options.messages && now() < deadline) {
    const elapsed = now() - started;
    await sleep(options.intervalMs - (elapsed % options.intervalMs));
    const result = await pollMailbox(runtime, name);
    if (result.status !== 'completed') throw new Error(`poll ${result.status}: ${result.error?.message ?? ''}`);
    if (result.delivered > 0) polls.push(result.durationMs);
  }
  await Promise.all(arriving);
  const latencies = options.webhook.received
    .filter((r) => r.status < 300)
    .map((r) => {
      const subject = (JSON.parse(r.body) as { subject: string }).subject;
      return r.receivedAt - (arrivals.get(subject) ?? NaN);
    });
  await runtime.close();
  return { latencies, polls };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '20' }, 'interval-ms': { type: 'string', default: '2000' } } });
  const messages = Number(values.messages);
  const intervalMs = Number(values['interval-ms']);
  if (!Number.isInteger(messages) || messages < 1) throw new Error(`--messages must be a positive integer, got ${values.messages}`);
  if (!Number.isInteger(intervalMs) || intervalMs < 100) throw new Error(`--interval-ms must be an integer of at least 100, got ${values['interval-ms']}`);
  if (!process.env.TEST_TLS_DIR) {
    process.exitCode = await rerunWithTestCa(__filename, process.argv.slice(2));
    return;
  }
  const azurite = new AzuritePeer();
  const entra = new TokenEndpointPeer();
  const webhook = new WebhookReceiverPeer();
  await Promise.all([azurite.start(), entra.start(), webhook.start()]);
  entra.register(APP);
  const imap = await new ImapPeer(entra, { mailbox: MAILBOX }).start();
  const graph = await new GraphPeer(entra).start();
  graph.addMailbox(MAILBOX);
  try {
    const transports: Transport[] = [
      { name: 'imap', receive: { via: 'imap' }, endpoints: { imap: imap.endpoint }, deliver: (raw) => void imap.append('INBOX', raw) },
      { name: 'graph', receive: { via: 'graph' }, endpoints: { graph: graph.url }, deliver: (raw) => void graph.mail.addMessage(MAILBOX, 'inbox', raw) },
    ];
    const scale = DEFAULT_INTERVAL_MS / intervalMs;
    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(`bench/latency: arrival-to-sink (message in the mailbox at the loopback stand-in -> signed webhook POST received), ${messages} messages per row arriving at random times`);
    console.log(`  timer poll every ${intervalMs} ms (the default schedule's 60 s scaled by 1/${scale.toFixed(0)}); the wait for the tick scales, the poll does not`);
    for (const transport of transports) {
      const { latencies, polls } = await timerPath(transport, { messages, intervalMs, storage: azurite.connectionString, authority: entra.url, webhook });
      const pollP50 = percentile(polls, 0.5);
      const pollMax = Math.max(...polls);
      const p50 = percentile(latencies, 0.5);
      const max = Math.max(...latencies);
      // What the default schedule implies: the same wait for the tick, 30 times as long, plus the same poll.
      const implied = (latency: number, poll: number) => (latency - poll) * scale + poll;
      console.log(`  ${transport.name.padEnd(5)} timer (scaled): p50 ${s(p50)}, max ${s(max)} over ${latencies.length} messages; polls that delivered took p50 ${s(pollP50)}, max ${s(pollMax)} (${polls.length} polls); expected mean interval/2 + poll = ${s(intervalMs / 2 + pollP50)}`);
      console.log(`  ${transport.name.padEnd(5)} timer at the default 1-minute schedule (implied): p50 ~${s(implied(p50, pollP50))}, max ~${s(implied(max, pollMax))}; expected mean 30 s + poll = ${s(DEFAULT_INTERVAL_MS / 2 + pollP50)}, worst 60 s + poll, plus up to 2 s for the mail-poll queue hop`);
    }
    console.log('  push (Graph change notifications, receive.push): not measured: not yet in this tree when this bench was written; to be measured through its notification function once it lands');
  } finally {
    await Promise.all([imap.stop(), graph.stop()]);
    await Promise.all([azurite.stop(), entra.stop(), webhook.stop()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
