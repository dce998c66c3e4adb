/**
 * Messages per second through our SMTP transport (SmtpSender: token provider, compose
 * options, error translation) and, in the same run, through raw nodemailer with the same
 * pool settings and the same (static) token, both against the loopback SMTP peer.
 * A figure, never an assertion. Usage: npm run bench:send -- --n 1000 [--rounds 3]
 * Rounds alternate which side goes first and the medians are reported, because the
 * machine is shared and a single pass is noisy.
 */
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { exchangeScope } from '../shared/config/cloud.js';
import { silentLogger } from '../shared/log.js';
import { toNodemailerOptions } from '../shared/mail/compose.js';
import type { OutgoingMessage } from '../shared/mail/outgoing.js';
import { MailRuntime } from '../shared/runtime.js';
import { prepareMessage } from '../shared/send/sendMail.js';
import { smtpSecurity } from '../shared/transports/smtp/security.js';
import { smtpPoolOptions } from '../shared/transports/smtp/smtpSender.js';
import { SmtpPeer } from '../test/peers/smtpPeer.js';
import { rerunWithTestCa } from '../test/peers/testCa.js';
import { TokenEndpointPeer } from '../test/peers/tokenEndpoint.js';

const MAILBOX = 'bench@contoso.com';
const WARM_UP = 20;

async function timed(count: number, send: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => send(i)));
  return count / ((performance.now() - started) / 1000);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function bench(n: number, rounds: number): Promise<void> {
  const entra = await new TokenEndpointPeer().start();
  const smtp = await new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX] }).start();
  entra.register({ tenantId: 'bench-tenant', clientId: 'bench-app', secret: 'bench-secret-value' });
  const runtime = new MailRuntime({
    env: {
      MAIL_PROFILES: JSON.stringify({
        profiles: {
          bench: {
            mailbox: MAILBOX,
            tenantId: 'bench-tenant',
            clientId: 'bench-app',
            auth: { type: 'clientSecret', secret: 'bench-client-secret' },
            send: { via: 'smtp' },
            endpoints: { authority: entra.url, smtp: smtp.endpoint },
          },
        },
      }),
      BENCH_CLIENT_SECRET: 'bench-secret-value',
    },
    logger: silentLogger,
  });
  const nodemailer = require('nodemailer') as typeof import('nodemailer');
  try {
    const messages: OutgoingMessage[] = Array.from({ length: WARM_UP + n * rounds }, (_, i) =>
      prepareMessage(runtime, {
        to: `rcpt${i}@example.com`,
        subject: `bench ${i}`,
        text: 'A short plain-text body.',
        html: '<p>A short <b>html</b> body.</p>',
      }).message,
    );
    const profile = runtime.profile('bench');
    const ours = runtime.sender(profile);
    const token = await runtime.tokens(profile).getToken(exchangeScope(profile.endpoints));
    const raw = nodemailer.createTransport({ ...smtpPoolOptions(profile.endpoints.smtp, smtpSecurity(profile)), auth: { type: 'OAuth2', user: MAILBOX, accessToken: token } });

    // Warm-up (not counted): pools connect and authenticate, the token is fetched, code is JIT-compiled.
    await timed(WARM_UP, (i) => ours.send(messages[i]!));
    await timed(WARM_UP, (i) => raw.sendMail(toNodemailerOptions(messages[i]!)));

    const before = smtp.messages.length;
    const oursRates: number[] = [];
    const rawRates: number[] = [];
    for (let round = 0; round < rounds; round++) {
      const batch = messages.slice(WARM_UP + round * n, WARM_UP + (round + 1) * n);
      const runOurs = async () => oursRates.push(await timed(n, (i) => ours.send(batch[i]!)));
      const runRaw = async () => rawRates.push(await timed(n, (i) => raw.sendMail(toNodemailerOptions(batch[i]!))));
      if (round % 2 === 0) {
        await runOurs();
        await runRaw();
      } else {
        await runRaw();
        await runOurs();
      }
    }
    const delivered = smtp.messages.length - before;
    raw.close();
    const oursRate = median(oursRates);
    const rawRate = median(rawRates);

    const pool = smtpPoolOptions(profile.endpoints.smtp, smtpSecurity(profile));
    console.log(`bench/send: ${n} messages x ${rounds} rounds each (median), pool maxConnections=${pool.maxConnections} maxMessages=${pool.maxMessages}, STARTTLS + XOAUTH2, loopback smtp-server (${delivered} delivered)`);
    console.log(`  SmtpSender:      ${oursRate.toFixed(0)} messages/s (rounds: ${oursRates.map((r) => r.toFixed(0)).join(', ')})`);
    console.log(`  raw nodemailer:  ${rawRate.toFixed(0)} messages/s (rounds: ${rawRates.map((r) => r.toFixed(0)).join(', ')})`);
    console.log(`  ratio (ours/raw): ${(oursRate / rawRate).toFixed(2)}`);
    console.log(`  token requests: ${entra.tokenRequests().length}`);
  } finally {
    await runtime.close();
    await smtp.stop();
    await entra.stop();
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { n: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '3' } } });
  const n = Number(values.n);
  const rounds = Number(values.rounds);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--n must be a positive integer, got ${values.n}`);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
  if (!process.env.TEST_TLS_DIR) {
    process.exitCode = await rerunWithTestCa(__filename, process.argv.slice(2));
    return;
  }
  await bench(n, rounds);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
