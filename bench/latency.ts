/**
 * Arrival-to-sink time (issue 11, item 4): from the moment a message lands in the mailbox at the
 * loopback stand-in (IMAP server, Graph stand-in) to the moment the signed webhook has its POST,
 * p50 and max over a set of messages that arrive at random times, for the timer poll run on a
 * schedule, and for push: the Graph stand-in's change notification to the notifications function
 * (over loopback HTTPS, as the host would serve it), its poll request on the mail-poll queue in
 * Azurite, taken off by a loop that polls the queue as the host's queue trigger does (back-off
 * doubling from 100 ms up to host.json's maxPollingInterval, 2 s; at once again after a message)
 * and handed to pollWorker. The interval is scaled down (default 2 s for the default schedule's 60 s) so that a run
 * takes a minute; what a poll takes is not scaled, so the figure for the default schedule is the
 * wait it implies (uniform over the minute) plus the measured poll, printed beside it. Figures,
 * never assertions.
 * Not measured for the timer: its hop to pollWorker through the mail-poll queue (bounded the same way).
 * Usage: npm run bench:latency -- [--messages 20] [--interval-ms 2000]
 */
import { InvocationContext } from '@azure/functions';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import MailComposer from 'nodemailer/lib/mail-composer';
import { lifecycleNotifications } from '../functions/lifecycleNotifications.js';
import { notifications } from '../functions/notifications.js';
import { pollWorker } from '../functions/pollWorker.js';
import { silentLogger } from '../shared/log.js';
import { LIFECYCLE_ROUTE, NOTIFICATION_ROUTE } from '../shared/receive/notificationRoutes.js';
import { pollMailbox } from '../shared/receive/pollMailbox.js';
import { MailRuntime, setRuntime } from '../shared/runtime.js';
import { POLL_QUEUE } from '../shared/state/queueNames.js';
import { AzuritePeer } from '../test/peers/azurite.js';
import { GraphPeer } from '../test/peers/graphPeer.js';
import { ImapPeer } from '../test/peers/imapPeer.js';
import { rerunWithTestCa } from '../test/peers/testCa.js';
import { TokenEndpointPeer } from '../test/peers/tokenEndpoint.js';
import { WebhookReceiverPeer } from '../test/peers/webhookReceiver.js';
import { FunctionsHttpHost } from '../test/support/functionsHttpHost.js';

const MAILBOX = 'latency@contoso.com';
const APP = { tenantId: 'bench-tenant', clientId: 'bench-app', secret: 'bench-secret-value' };
/** The timer's default schedule (POLL_SCHEDULE unset): every minute. */
const DEFAULT_INTERVAL_MS = 60_000;
/** host.json extensions.queues.maxPollingInterval: the longest the queue trigger waits between looks at an idle queue. */
const QUEUE_MAX_POLLING_MS = 2_000;

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

/**
 * Push: a Graph profile with receive.push, its subscription made by a first poll through pollWorker;
 * then messages arrive at random times over `spanMs`, the stand-in notifies the notifications
 * function, and a queue-trigger loop hands each poll request to pollWorker. Answers each message's
 * arrival-to-webhook time.
 */
async function pushPath(graph: GraphPeer, options: { messages: number; spanMs: number; storage: string; authority: string; webhook: WebhookReceiverPeer }): Promise<number[]> {
  const host = await new FunctionsHttpHost().serve(NOTIFICATION_ROUTE, notifications).serve(LIFECYCLE_ROUTE, lifecycleNotifications).start();
  const mailbox = `push-${MAILBOX}`;
  graph.addMailbox(mailbox);
  const name = 'latencypush';
  const runtime = new MailRuntime({
    env: {
      AzureWebJobsStorage: options.storage,
      NOTIFICATION_URL: host.url,
      MAIL_PROFILES: JSON.stringify({ profiles: { [name]: {
        mailbox, tenantId: APP.tenantId, clientId: APP.clientId,
        auth: { type: 'clientSecret', secret: 'bench-client-secret' },
        receive: { via: 'graph', push: true, deliver: { webhook: { url: options.webhook.url, signingSecret: 'hook-signing-key' } } },
        endpoints: { authority: options.authority, graph: graph.url },
      } } }),
      BENCH_CLIENT_SECRET: APP.secret,
      HOOK_SIGNING_KEY: 'latency-hook-key',
    },
    logger: silentLogger,
  });
  setRuntime(runtime);
  const context = () => new InvocationContext({ invocationId: `bench-${Date.now()}`, functionName: 'pollWorker', logHandler: () => {} });
  const queue = await runtime.state.receive.account.queue(POLL_QUEUE);
  let running = true;
  const trigger = (async () => {
    let idleMs = 0;
    while (running) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 16 });
      for (const item of receivedMessageItems) {
        await pollWorker(JSON.parse(Buffer.from(item.messageText, 'base64').toString('utf8')) as unknown, context());
        await queue.deleteMessage(item.messageId, item.popReceipt);
      }
      idleMs = receivedMessageItems.length > 0 ? 0 : Math.min(QUEUE_MAX_POLLING_MS, Math.max(100, idleMs * 2));
      if (idleMs > 0) await sleep(idleMs);
    }
  })();
  try {
    await pollWorker({ profile: name }, context());
    options.webhook.reset();
    const arrivals = new Map<string, number>();
    const sources = await Promise.all(Array.from({ length: options.messages }, (_, i) => compose(`latency push ${i}`)));
    await Promise.all(sources.map(async (raw, i) => {
      await sleep(Math.random() * options.spanMs);
      arrivals.set(`latency push ${i}`, now());
      graph.mail.addMessage(mailbox, 'inbox', raw);
    }));
    const deadline = now() + 30_000;
    while (options.webhook.accepted().length < options.messages && now() < deadline) await sleep(50);
    return options.webhook.received.filter((r) => r.status < 300).map((r) => r.receivedAt - (arrivals.get((JSON.parse(r.body) as { subject: string }).subject) ?? NaN));
  } finally {
    running = false;
    await trigger;
    setRuntime(undefined);
    await runtime.close();
    await host.stop();
  }
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
    let graphTimer: { p50: number; max: number } | undefined;
    for (const transport of transports) {
      const { latencies, polls } = await timerPath(transport, { messages, intervalMs, storage: azurite.connectionString, authority: entra.url, webhook });
      const pollP50 = percentile(polls, 0.5);
      const pollMax = Math.max(...polls);
      const p50 = percentile(latencies, 0.5);
      const max = Math.max(...latencies);
      console.log(`  ${transport.name.padEnd(5)} timer (scaled): p50 ${s(p50)}, max ${s(max)} over ${latencies.length} messages; polls that delivered took p50 ${s(pollP50)}, max ${s(pollMax)} (${polls.length} polls); expected mean interval/2 + poll = ${s(intervalMs / 2 + pollP50)}`);
      // What the default schedule implies: a wait for the tick uniform over the minute (mean and
      // median 30 s, at most 60 s) and the same poll, which the interval does not change.
      const implied = { p50: DEFAULT_INTERVAL_MS / 2 + pollP50, max: DEFAULT_INTERVAL_MS + pollMax };
      if (transport.name === 'graph') graphTimer = implied;
      console.log(`  ${transport.name.padEnd(5)} timer at the default 1-minute schedule (implied: 30 s + poll, worst 60 s + poll): p50 ~${s(implied.p50)}, max ~${s(implied.max)}, plus up to ${s(QUEUE_MAX_POLLING_MS)} for the mail-poll queue hop`);
    }
    const pushed = await pushPath(graph, { messages, spanMs: Math.max(1, Math.ceil(messages / 2)) * intervalMs, storage: azurite.connectionString, authority: entra.url, webhook });
    console.log(`  graph push (change notification -> notifications function -> mail-poll queue -> pollWorker): p50 ${s(percentile(pushed, 0.5))}, max ${s(Math.max(...pushed))} over ${pushed.length} messages; not scaled: no schedule in it, the queue trigger's wait is at most ${s(QUEUE_MAX_POLLING_MS)}`);
    const timerGraph = graphTimer;
    if (timerGraph) console.log(`  ratio push/timer at the default schedule (implied), graph: p50 ${(percentile(pushed, 0.5) / timerGraph.p50).toFixed(3)}, max ${(Math.max(...pushed) / timerGraph.max).toFixed(3)}`);
  } finally {
    await Promise.all([imap.stop(), graph.stop()]);
    await Promise.all([azurite.stop(), entra.stop(), webhook.stop()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
