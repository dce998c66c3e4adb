/**
 * What the governor (shared/governor) adds to a Graph request: the same sends through the Graph
 * sender of a governed profile and of one with graph.governor false, against the loopback Graph
 * stand-in with state in Azurite, one request at a time (the latency each request pays) and 4 at
 * once (Graph's concurrency per mailbox). Also the send pacer's booking, per message. A figure, never
 * an assertion. Usage: node dist/bench/governor.js [--n 200] [--rounds 3]
 * Azurite is a local emulator: a storage account in Azure answers a lease or an entity write in a
 * few milliseconds more than loopback, which the figure per request does not include.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { silentLogger } from '../shared/log.js';
import type { OutgoingMessage } from '../shared/mail/outgoing.js';
import { MailRuntime } from '../shared/runtime.js';
import { prepareMessage } from '../shared/send/sendMail.js';
import { AzuritePeer } from '../test/peers/azurite.js';
import { GraphPeer } from '../test/peers/graphPeer.js';
import { rerunWithTestCa } from '../test/peers/testCa.js';
import { TokenEndpointPeer } from '../test/peers/tokenEndpoint.js';

const MAILBOX = 'bench@contoso.com';
const WARM_UP = 20;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Milliseconds per message, `concurrency` in flight. */
async function perMessage(messages: OutgoingMessage[], concurrency: number, send: (m: OutgoingMessage) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < messages.length) await send(messages[next++]!);
  }));
  return (performance.now() - started) / messages.length;
}

async function bench(n: number, rounds: number): Promise<void> {
  const azurite = new AzuritePeer();
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  await Promise.all([azurite.start(), entra.start(), graph.start()]);
  entra.register({ tenantId: 'bench-tenant', clientId: 'bench-app', secret: 'bench-secret-value' });
  graph.addMailbox(MAILBOX);
  const profile = (governor: boolean) => ({
    mailbox: MAILBOX,
    tenantId: 'bench-tenant',
    clientId: 'bench-app',
    auth: { type: 'clientSecret', secret: 'bench-client-secret' },
    graph: { governor },
    send: { via: 'graph', ratePerMinute: 6000 },
    endpoints: { authority: entra.url, graph: graph.url },
  });
  const runtime = new MailRuntime({
    env: {
      AzureWebJobsStorage: azurite.connectionString,
      MAIL_PROFILES: JSON.stringify({ profiles: { governed: profile(true), ungoverned: profile(false) } }),
      BENCH_CLIENT_SECRET: 'bench-secret-value',
    },
    logger: silentLogger,
  });
  try {
    const messages = Array.from({ length: n }, (_, i) => prepareMessage(runtime, { profile: 'governed', to: `rcpt${i}@example.com`, subject: `bench ${i}`, text: 'Hello.' }).message);
    const governed = runtime.sender(runtime.profile('governed'));
    const ungoverned = runtime.sender(runtime.profile('ungoverned'));
    // Warm-up: tokens, TLS sessions, the slot blobs and the budget row, JIT.
    await perMessage(messages.slice(0, WARM_UP), 4, (m) => governed.send(m));
    await perMessage(messages.slice(0, WARM_UP), 4, (m) => ungoverned.send(m));

    const figures = { governed1: [] as number[], ungoverned1: [] as number[], governed4: [] as number[], ungoverned4: [] as number[], pace: [] as number[] };
    const pacer = runtime.profile('governed');
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? ['governed', 'ungoverned'] as const : ['ungoverned', 'governed'] as const;
      for (const which of order) {
        const sender = which === 'governed' ? governed : ungoverned;
        figures[`${which}1`].push(await perMessage(messages, 1, (m) => sender.send(m)));
        figures[`${which}4`].push(await perMessage(messages, 4, (m) => sender.send(m)));
      }
      figures.pace.push(await perMessage(messages, 1, () => runtime.governor!.pace(pacer, 1, { maxWaitMs: Number.POSITIVE_INFINITY })));
    }
    const ms = (v: number[]) => `${median(v).toFixed(2)} ms`;
    console.log(`bench/governor: ${n} Graph sendMail requests per figure, median of ${rounds} rounds, loopback Graph stand-in, state in Azurite`);
    console.log(`  one at a time:  governed ${ms(figures.governed1)} per request, ungoverned ${ms(figures.ungoverned1)}: +${(median(figures.governed1) - median(figures.ungoverned1)).toFixed(2)} ms`);
    console.log(`  4 in flight:    governed ${ms(figures.governed4)} per request, ungoverned ${ms(figures.ungoverned4)}: +${(median(figures.governed4) - median(figures.ungoverned4)).toFixed(2)} ms`);
    console.log(`  send pacer booking: ${ms(figures.pace)} per message (one read and one conditional write of the pace row)`);
    console.log(`  Graph saw ${graph.requests.filter((r) => r.status === 429).length} 429s`);
  } finally {
    await runtime.close();
    await Promise.all([azurite.stop(), entra.stop(), graph.stop()]);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '200' }, rounds: { type: 'string', default: '3' } } });
  const [n, rounds] = [Number(values.n), Number(values.rounds)];
  if (!(Number.isInteger(n) && n >= WARM_UP && Number.isInteger(rounds) && rounds >= 1)) throw new Error(`--n (at least ${WARM_UP}) and --rounds (at least 1) are whole numbers, not ${values.n} and ${values.rounds}`);
  // The stand-ins serve the test CA's certificate, which Node trusts only from NODE_EXTRA_CA_CERTS at start-up.
  if (process.env.TEST_TLS_DIR) await bench(n, rounds);
  else process.exitCode = await rerunWithTestCa(__filename, process.argv.slice(2));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
