import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { odata } from '@azure/data-tables';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { send } from '../../functions/send.js';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { MailState } from '../../shared/state/index.js';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import { SENDS_TABLE } from '../../shared/state/sendStatusStore.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { AzuritePeer } from '../peers/azurite.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';
import { setProcessEnv } from '../support/processEnv.js';
import { capturingLogger, composeEml } from '../support/receiveHarness.js';
import { pollUntilDrained, type PollTally } from './pollLoop.js';
import { drainSendQueue } from './queueHost.js';

export const MAILBOX = 'support@contoso.com';
const TENANT = 'contoso-tenant';
const APP = { tenantId: TENANT, clientId: 'fault-app', secret: `fault-secret-${randomUUID()}` };
/** The Function App's own identity, which reads the vault (DefaultAzureCredential's AZURE_* settings). */
const VAULT_READER = { tenantId: TENANT, clientId: 'function-app', secret: `vault-reader-${randomUUID()}` };
const SENT_FOLDER = 'Sent Items';
const HOOK_SIGNING_KEY = 'fault-hook-key-5b1e';

/** Messages per row and path: the issue's 1,000, FAULTS_N for a quick local run. */
export const N = Number(process.env.FAULTS_N ?? 1000);

export type SendProfile = 'graph' | 'smtpImap' | 'smtpVault';
export type PollVia = 'imap' | 'graph';

/** One row of the matrix, counted at the receiving end. */
export interface RowCount {
  fault: string;
  path: 'send' | 'poll';
  transport: string;
  in: number;
  delivered: number;
  lost: number;
  /** Send: copies the provider accepted beyond the first per send id. Poll: stable ids beyond the first per seeded message. */
  dupById: number;
  /** Copies beyond the first per Message-ID at the provider (send) or acknowledged under more than one stable id (poll). */
  dupByMessageId: number;
  /** Poll: acknowledgements of an id already acknowledged (same id, same JSON: at-least-once, deduplicated by the consumer). Send: 0. */
  sameIdAgain: number;
  /** Poll: dead-lettered messages (the poison row's, expected). Send: sends whose status is not `sent`. */
  other: number;
  otherLabel: string;
  note: string;
  seconds: number;
}

/** Kills a child at these counts of the peer's acceptances, one process per stretch. */
export interface CrashPlan {
  /** The acceptances (provider accepted / webhook acknowledged) after which the running worker is killed. */
  at: number[];
}

export interface SendRowOptions {
  fault: string;
  profile: SendProfile;
  /** Arms the fault before the queue is drained. */
  arm?: (rig: FaultRig) => void;
  /** Called at each acceptance by the provider, with the count so far (a fault in the middle of the run). */
  onAccepted?: (count: number, rig: FaultRig) => void;
  /** The queue drained by worker processes killed at these points, then one in this process. */
  crash?: CrashPlan;
  /** Two worker processes drain the queue at once. */
  twoWorkers?: boolean;
  note?: string;
}

export interface PollRowOptions {
  fault: string;
  via: PollVia;
  /** Unparseable sources seeded among the N: expected dead-lettered, each once. */
  poison?: number;
  arm?: (rig: FaultRig) => void;
  /** Called at each 2xx acknowledgement by the webhook, with the count so far. */
  onAcknowledged?: (count: number, rig: FaultRig) => void;
  crash?: CrashPlan;
  twoWorkers?: boolean;
  /** The profile's client secret read from Key Vault. */
  vault?: boolean;
  env?: NodeJS.ProcessEnv;
  note?: string;
}

/**
 * The loopback peers of the fault matrix (Azurite, token endpoint, Key Vault, SMTP with its
 * IMAP Sent folder, Graph, a webhook consumer) and the two runs each row makes: N queued sends
 * through POST /api/send and the send worker, or N messages seeded at a peer and polled until
 * drained, with the fault armed. Everything is counted where it arrives.
 */
export class FaultRig {
  readonly azurite = new AzuritePeer();
  readonly entra = new TokenEndpointPeer();
  readonly vault = new KeyVaultPeer(this.entra, TENANT);
  readonly smtp = new SmtpPeer({ tokens: this.entra, mailboxes: [MAILBOX] });
  readonly graph = new GraphPeer(this.entra);
  readonly sentImap = new ImapPeer(this.entra, { mailbox: MAILBOX, sentFolder: SENT_FOLDER });
  readonly webhook = new WebhookReceiverPeer();
  readonly logs: string[] = [];
  /** The IMAP server the current poll row reads (one per row, so every row starts from an empty mailbox). */
  inbox?: ImapPeer;
  private runtime?: MailRuntime;
  private rowCount = 0;
  private children = new Set<ChildProcess>();

  async start(): Promise<void> {
    await Promise.all([this.azurite.start(), this.entra.start(), this.vault.start(), this.smtp.start(), this.graph.start(), this.sentImap.start(), this.webhook.start()]);
    this.entra.register({ ...APP });
    this.entra.register({ ...VAULT_READER });
    this.vault.setSecret('fault-app-secret', APP.secret);
    // With KEY_VAULT_URL set every secret name resolves in the vault, the webhook's signing key too.
    this.vault.setSecret('fault-hook-signing-key', HOOK_SIGNING_KEY);
    this.graph.addMailbox(MAILBOX);
    // Exchange saves what a mailbox submits over SMTP in its Sent Items; that is what reconciliation finds.
    this.smtp.saveSentCopy = (raw) => this.sentImap.append(SENT_FOLDER, raw);
  }

  async stop(): Promise<void> {
    for (const child of this.children) child.kill('SIGKILL');
    await this.runtime?.close();
    setRuntime(undefined);
    await Promise.all([this.azurite.stop(), this.entra.stop(), this.vault.stop(), this.smtp.stop(), this.graph.stop(), this.sentImap.stop(), this.webhook.stop(), this.inbox?.stop()]);
  }

  /** The app's settings for the send profiles and one receiving profile. */
  private settings(options: { receive?: { name: string; via: PollVia; mailbox: string }; vault?: boolean; env?: NodeJS.ProcessEnv } = {}): NodeJS.ProcessEnv {
    const profile = (mailbox: string, extra: Record<string, unknown>) => ({
      mailbox,
      tenantId: APP.tenantId,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'fault-app-secret' },
      endpoints: { authority: this.entra.url, smtp: this.smtp.endpoint, graph: this.graph.url, imap: this.inbox?.endpoint ?? this.sentImap.endpoint },
      ...extra,
    });
    const sendProfile = (sendSection: Record<string, unknown>) => ({
      // Exchange's 30 a minute (the pacer's default) would make a row of 1,000 last 33 minutes;
      // the pacer still books every send, at Graph's and the schema's highest rate.
      ...profile(MAILBOX, { send: { allowedFrom: [MAILBOX], ratePerMinute: 6000, recipientsPerDay: 1_000_000, ...sendSection } }),
      endpoints: { authority: this.entra.url, smtp: this.smtp.endpoint, graph: this.graph.url, imap: this.sentImap.endpoint },
    });
    const profiles: Record<string, unknown> = {
      graph: sendProfile({ via: 'graph' }),
      smtpImap: sendProfile({ via: 'smtp', lookupSent: 'imap' }),
      smtpVault: sendProfile({ via: 'smtp', lookupSent: 'imap' }),
    };
    if (options.receive) {
      profiles[options.receive.name] = profile(options.receive.mailbox, {
        receive: { via: options.receive.via, deliver: { webhook: { url: this.webhook.url, signingSecret: 'fault-hook-signing-key' } } },
      });
    }
    const vault = options.vault
      ? { KEY_VAULT_URL: this.vault.url, KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true', AZURE_TENANT_ID: VAULT_READER.tenantId, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: this.entra.url }
      : { FAULT_APP_SECRET: APP.secret };
    return {
      AzureWebJobsStorage: this.azurite.connectionString,
      MAIL_PROFILES: JSON.stringify({ profiles }),
      FAULT_HOOK_SIGNING_KEY: HOOK_SIGNING_KEY,
      WEBHOOK_TIMEOUT_MS: '2000',
      // A queued send's retries after 1-2 s, then 2-4 s, ... instead of 15-30 s, then 30-60 s: the
      // same retries in the same order, in a row that fits the CI budget.
      SEND_RETRY_BASE_SECONDS: '1',
      // A held token request fails what waits for it after 5 s instead of the default 60 s.
      TOKEN_TIMEOUT_SECONDS: '5',
      // The Graph peer files a sent copy at once (Exchange takes seconds): a takeover's lookup
      // concludes "not sent" after 3 s of looking instead of 21.
      SENT_ITEMS_LOOKUP_SECONDS: '3',
      ...vault,
      ...options.env,
    };
  }

  /** DefaultAzureCredential reads AZURE_* from process.env itself: the Function App's identity for a row whose secret is in the vault. */
  private vaultReader(vault: boolean | undefined): () => void {
    return vault ? setProcessEnv({ AZURE_TENANT_ID: VAULT_READER.tenantId, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: this.entra.url }) : () => undefined;
  }

  private useRuntime(env: NodeJS.ProcessEnv): MailRuntime {
    void this.runtime?.close();
    this.runtime = new MailRuntime({ env, logger: capturingLogger(this.logs) });
    setRuntime(this.runtime);
    return this.runtime;
  }

  private stateOfRig?: MailState;

  /** The rig's own view of the state (one client set for every count it makes). */
  private get state(): MailState {
    return (this.stateOfRig ??= new MailState(this.azurite.connectionString));
  }

  /** N queued sends through the real handler, drained by the real worker under the row's fault; counted at the SMTP or Graph peer. */
  async sendRow(options: SendRowOptions): Promise<RowCount> {
    const started = Date.now();
    const key = `r${++this.rowCount}`;
    const env = this.settings({ vault: options.profile === 'smtpVault' });
    this.smtp.messages.splice(0);
    this.smtp.failures = {};
    this.graph.sent.splice(0);
    this.graph.clearFaults();
    this.entra.clearFaults();
    this.vault.clearFaults();
    const restoreEnv = this.vaultReader(options.profile === 'smtpVault');
    const runtime = this.useRuntime(env);
    const ids = await this.acceptSends(key, options.profile).catch((error: unknown) => {
      restoreEnv();
      throw error;
    });
    stage(`${key} ${options.fault}: ${ids.size} accepted by POST /api/send`);

    options.arm?.(this);
    let accepted = 0;
    const crashAt = [...(options.crash?.at ?? [])];
    let killCurrent: (() => void) | undefined;
    const onAccepted = async () => {
      accepted++;
      options.onAccepted?.(accepted, this);
      if (crashAt.length > 0 && accepted >= crashAt[0]!) {
        crashAt.shift();
        killCurrent?.();
      }
    };
    this.smtp.onAccepted = onAccepted;
    this.graph.onAccepted = onAccepted;
    const processEnv = { ...process.env, ...env };
    try {
      if (options.twoWorkers) {
        await Promise.all([this.workerProcess({ kind: 'send' }, processEnv).exited, this.workerProcess({ kind: 'send' }, processEnv).exited]);
      }
      for (let kills = options.crash?.at.length ?? 0; kills > 0; kills--) {
        const child = this.workerProcess({ kind: 'send' }, processEnv);
        killCurrent = child.kill;
        const signal = await child.exited;
        stage(`${key}: worker process ended (${signal}) at ${accepted} accepted`);
        if (signal !== 'SIGKILL') throw new Error(`the worker process was to be killed at acceptance ${crashAt[0]} but ended by itself (${signal ?? 'exit'}): ${child.output()}`);
      }
      killCurrent = undefined;
      stage(`${key}: draining in this process (${accepted} accepted so far)`);
      const drained = await drainSendQueue(this.state.send, { patienceMs: 240_000 });
      stage(`${key}: drained ${JSON.stringify(drained)}`);
    } finally {
      restoreEnv();
      this.smtp.onAccepted = undefined;
      this.graph.onAccepted = undefined;
      this.smtp.failures = {};
      this.graph.clearFaults();
      this.entra.clearFaults();
      this.vault.clearFaults();
    }

    // At the provider: each accepted copy with its subject (which names the send) and Message-ID.
    const copies = options.profile === 'graph'
      ? this.graph.sent.map((s) => ({ subject: String(s.message.subject ?? ''), messageId: s.internetMessageId }))
      : this.smtp.messages.map((m) => ({ subject: header(m.raw, 'subject'), messageId: header(m.raw, 'message-id') }));
    const bySubject = countBy(copies.map((c) => c.subject));
    const byMessageId = countBy(copies.map((c) => c.messageId));
    const subjects = [...ids.keys()];
    const delivered = subjects.filter((s) => bySubject.has(s)).length;
    const rows = await this.statusRowsSince(new Date(started).toISOString());
    const notSent = [...ids.values()].map((id) => rows.get(id)).filter((r) => r?.status !== 'sent').map((r) => (r ? `${r.status}${r.lastErrorCode ? ` (${r.lastErrorCode}${r.reconciled ? `, ${r.reconciled}` : ''})` : ''}` : 'missing'));
    await runtime.close();
    return {
      fault: options.fault,
      path: 'send',
      transport: options.profile === 'graph' ? 'Graph' : options.profile === 'smtpVault' ? 'SMTP+IMAP, Key Vault secret' : 'SMTP+IMAP',
      in: ids.size,
      delivered,
      lost: ids.size - delivered,
      dupById: sumBeyondFirst(bySubject),
      dupByMessageId: sumBeyondFirst(byMessageId),
      sameIdAgain: 0,
      other: notSent.length,
      otherLabel: notSent.length ? `not sent: ${[...countBy(notSent)].map(([s, n]) => `${s} ${n}`).join(', ')}` : 'all sent',
      note: options.note ?? '',
      seconds: (Date.now() - started) / 1000,
    };
  }

  /** The status rows of the sends made since `since` (this row's), by id, in one query rather than a read per send. */
  private async statusRowsSince(since: string): Promise<Map<string, { status: string; lastErrorCode?: string; reconciled?: string }>> {
    const table = await this.state.account.table(SENDS_TABLE);
    const rows = new Map<string, { status: string; lastErrorCode?: string; reconciled?: string }>();
    const entities = table.listEntities<{ id: string; status: string; lastErrorCode?: string; reconciled?: string }>({ queryOptions: { filter: odata`createdAt ge ${since}`, select: ['id', 'status', 'lastErrorCode', 'reconciled'] } });
    for await (const entity of entities) rows.set(entity.id, entity);
    return rows;
  }

  /** POSTs N queued sends (16 at a time) through functions/send.ts; returns subject -> send id. */
  private async acceptSends(key: string, profile: SendProfile): Promise<Map<string, string>> {
    await (await this.state.account.queue(SEND_QUEUE)).clearMessages();
    const ids = new Map<string, string>();
    await mapLimited([...Array(N).keys()], 16, async (i) => {
      const subject = `fault ${key} #${i}`;
      const body = JSON.stringify({ profile, to: 'alice@example.com', subject, text: `Message ${i} of row ${key}.` });
      const request = new HttpRequest({ method: 'POST', url: 'http://localhost/api/send?mode=queued', body: { string: body }, headers: { 'content-type': 'application/json' } });
      const context = new InvocationContext({ invocationId: randomUUID(), functionName: 'send', logHandler: () => undefined });
      const response = await send(request, context);
      if (response.status !== 202) throw new Error(`POST /api/send answered ${response.status}: ${String(response.body)}`);
      ids.set(subject, String((JSON.parse(String(response.body)) as { id: string }).id));
    });
    return ids;
  }

  /** N messages seeded at the IMAP or Graph peer (poison among them), polled until drained under the row's fault; counted at the webhook. */
  async pollRow(options: PollRowOptions): Promise<RowCount> {
    const started = Date.now();
    const key = `p${++this.rowCount}`;
    const mailbox = `${key}@contoso.com`;
    this.webhook.reset();
    this.entra.clearFaults();
    this.vault.clearFaults();
    this.graph.clearFaults();
    if (options.via === 'imap') {
      await this.inbox?.stop();
      this.inbox = await new ImapPeer(this.entra, { mailbox }).start();
    } else {
      this.graph.addMailbox(mailbox);
    }
    const poison = options.poison ?? 0;
    const poisonAt = new Set([...Array(poison).keys()].map((k) => Math.floor(((k + 0.5) * N) / poison)));
    for (let i = 0; i < N; i++) {
      const raw = poisonAt.has(i)
        ? Buffer.from(`not an e-mail message ${key} #${i}\r\n\r\nonly text\r\n`)
        : await composeEml({ from: `customer${i}@fabrikam.com`, to: mailbox, subject: `fault ${key} #${i}`, text: `Body ${i}`, messageId: `<fault-${key}-${i}@fabrikam.com>` });
      if (options.via === 'imap') this.inbox!.append('INBOX', raw);
      else this.graph.mail.addMessage(mailbox, 'inbox', raw);
    }
    stage(`${key} ${options.fault}: ${N} seeded`);
    const name = `poll${key}`;
    const env = this.settings({ receive: { name, via: options.via, mailbox }, vault: options.vault, env: options.env });
    const restoreEnv = this.vaultReader(options.vault);
    const runtime = this.useRuntime(env);
    options.arm?.(this);
    let acknowledged = 0;
    const crashAt = [...(options.crash?.at ?? [])];
    let killCurrent: (() => void) | undefined;
    this.webhook.onAnswered = (hook) => {
      if (hook.status >= 300) return;
      acknowledged++;
      options.onAcknowledged?.(acknowledged, this);
      if (crashAt.length > 0 && acknowledged >= crashAt[0]!) {
        crashAt.shift();
        killCurrent?.();
      }
    };
    const processEnv = { ...process.env, ...env };
    let tally: PollTally | undefined;
    try {
      for (let kills = options.crash?.at.length ?? 0; kills > 0; kills--) {
        const child = this.workerProcess({ kind: 'poll', profile: name }, processEnv);
        killCurrent = child.kill;
        const signal = await child.exited;
        stage(`${key}: poll process ended (${signal}) at ${acknowledged} acknowledged`);
        if (signal !== 'SIGKILL') throw new Error(`the poll process was to be killed at acknowledgement ${crashAt[0]} but ended by itself (${signal ?? 'exit'}): ${child.output()}`);
        // The dead poll's lease on the mailbox lapses by itself; break it rather than wait for that.
        await this.breakLease(mailbox);
      }
      killCurrent = undefined;
      if (options.twoWorkers) {
        const second = new MailRuntime({ env, logger: capturingLogger(this.logs) });
        try {
          [tally] = await Promise.all([pollUntilDrained(runtime, name, { patienceMs: 240_000 }), pollUntilDrained(second, name, { patienceMs: 240_000 })]);
        } finally {
          await second.close();
        }
      } else {
        tally = await pollUntilDrained(runtime, name, { patienceMs: 240_000 });
      }
      stage(`${key}: polled ${JSON.stringify(tally)}`);
    } finally {
      restoreEnv();
      this.webhook.onAnswered = undefined;
      this.entra.clearFaults();
      this.vault.clearFaults();
      this.graph.clearFaults();
    }

    const acks = this.webhook.accepted<DeliveredMessage>();
    const seqOf = (m: DeliveredMessage) => /#(\d+)$/.exec(m.subject)?.[1] ?? '?';
    const idsPerSeq = new Map<string, Set<string>>();
    const idsPerMessageId = new Map<string, Set<string>>();
    for (const m of acks) {
      (idsPerSeq.get(seqOf(m)) ?? idsPerSeq.set(seqOf(m), new Set()).get(seqOf(m))!).add(m.id);
      const mid = m.messageId ?? '';
      (idsPerMessageId.get(mid) ?? idsPerMessageId.set(mid, new Set()).get(mid)!).add(m.id);
    }
    const deadLettered = await this.deadLetteredSources(name);
    const expected = [...Array(N).keys()].filter((i) => !poisonAt.has(i)).map(String);
    const delivered = expected.filter((s) => idsPerSeq.has(s)).length;
    const poisonDeadLettered = [...poisonAt].filter((i) => deadLettered.has(i)).length;
    const distinctIds = new Set(acks.map((m) => m.id)).size;
    await runtime.close();
    return {
      fault: options.fault,
      path: 'poll',
      transport: options.via === 'imap' ? 'IMAP' : 'Graph',
      in: N,
      delivered,
      lost: expected.length - delivered + (poison - poisonDeadLettered),
      dupById: [...idsPerSeq.values()].reduce((sum, set) => sum + set.size - 1, 0),
      dupByMessageId: [...idsPerMessageId.values()].reduce((sum, set) => sum + set.size - 1, 0),
      sameIdAgain: acks.length - distinctIds,
      other: poisonDeadLettered,
      otherLabel: `dead-lettered ${deadLettered.size}${poison ? ` (poison ${poisonDeadLettered}/${poison})` : ''}`,
      note: [options.note ?? '', tally ? `${tally.polls} polls, ${tally.failed} failed, ${tally.leased} leased${tally.resynced ? `, ${tally.resynced} resynced` : ''}` : ''].filter(Boolean).join('; '),
      seconds: (Date.now() - started) / 1000,
    };
  }

  /** The seeded positions of the sources dead-lettered for a profile (their blob holds the source). */
  private async deadLetteredSources(profile: string): Promise<Set<number>> {
    const container = await this.state.account.container(STATE_NAMES.deadLetter);
    const found = new Set<number>();
    for await (const blob of container.listBlobsFlat({ prefix: `${profile}/` })) {
      if (!blob.name.endsWith('.eml')) continue;
      const text = (await container.getBlockBlobClient(blob.name).downloadToBuffer()).toString('latin1');
      const seq = /#(\d+)/.exec(text)?.[1];
      if (seq !== undefined) found.add(Number(seq));
    }
    return found;
  }

  private async breakLease(mailbox: string): Promise<void> {
    const leases = await this.state.account.container(STATE_NAMES.leases);
    await leases.getBlockBlobClient(encodeURIComponent(mailbox)).getBlobLeaseClient().breakLease(0).catch(() => undefined);
  }

  /** A worker process (workerProcess.ts) on this job; `kill` is SIGKILL. */
  private workerProcess(job: Record<string, unknown>, env: NodeJS.ProcessEnv): { exited: Promise<NodeJS.Signals | null>; kill: () => void; output: () => string } {
    const child = spawn(process.execPath, [path.join(__dirname, 'workerProcess.js'), JSON.stringify(job)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => {
        this.children.delete(child);
        resolve(signal);
      }),
    );
    return { exited, kill: () => child.kill('SIGKILL'), output: () => output.slice(-2000) };
  }
}

/** FAULTS_VERBOSE: each stage of a row on stderr, for a local run. */
function stage(text: string): void {
  if (process.env.FAULTS_VERBOSE) process.stderr.write(`  ${new Date().toISOString().slice(11, 19)} ${text}\n`);
}

function header(raw: Buffer, name: string): string {
  const head = raw.toString('latin1').split(/\r?\n\r?\n/, 1)[0] ?? '';
  const match = new RegExp(`^${name}:[ \\t]*(.*(?:\\r?\\n[ \\t].*)*)`, 'im').exec(head);
  return (match?.[1] ?? '').replace(/\r?\n[ \t]+/g, ' ').trim();
}

function countBy(values: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return counts;
}

function sumBeyondFirst(counts: Map<string, number>): number {
  return [...counts.values()].reduce((sum, n) => sum + n - 1, 0);
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}
