import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { profilesHealth } from '../../shared/health/report.js';
import { MailRuntime } from '../../shared/runtime.js';
import { acceptSend } from '../../shared/send/acceptSend.js';
import { MailState } from '../../shared/state/index.js';
import { clearGovernorState } from '../support/governorState.js';
import { AzuritePeer } from '../peers/azurite.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { composeEml } from '../support/receiveHarness.js';
import { runNode } from '../support/runNode.js';

const MAILBOX = 'shared@contoso.com';
const APP = { tenantId: 'contoso-tenant', clientId: 'busy-app', secret: `busy-secret-${randomUUID()}` };
const ROOT = path.resolve(__dirname, '../../..');
const INSTANCE = path.join(__dirname, '../support/governedInstance.js');

interface InstanceReport {
  sent: number;
  failures: string[];
  polls: string[];
  /** The operations the instance logged a warning for (governor.* when it let something go ungoverned). */
  warnings: string[];
}

/**
 * Two app processes, each polling the mailbox and sending from it with 8 sends in flight, against
 * a Graph stand-in that answers 429 MailboxConcurrency above 4 requests in flight for the mailbox
 * and holds each answer 150 ms, so that without a shared limit the two together exceed it.
 */
describe('two instances polling and sending for one mailbox stay within Graph\'s 4 concurrent requests (shared/governor)', () => {
  const azurite = new AzuritePeer();
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);

  before(async () => {
    await Promise.all([azurite.start(), entra.start(), graph.start()]);
    entra.register({ ...APP });
    graph.addMailbox(MAILBOX);
    graph.concurrencyLimit = 4;
    graph.answerDelayMs = 150;
  });
  after(() => Promise.all([azurite.stop(), entra.stop(), graph.stop()]));

  beforeEach(async () => {
    graph.requests.splice(0);
    graph.sent.splice(0);
    graph.maxInFlight.clear();
    await clearGovernorState(new MailState(azurite.connectionString).account);
    for (let n = 0; n < 6; n++) {
      graph.mail.addMessage(MAILBOX, 'inbox', await composeEml({ from: `user${n}@fabrikam.com`, to: MAILBOX, subject: `Request ${n}`, text: 'Help.', messageId: `<${randomUUID()}@fabrikam.com>` }));
    }
  });

  function profileOf(governor: boolean, ratePerMinute: number): Record<string, unknown> {
    return {
      mailbox: MAILBOX,
      tenantId: APP.tenantId,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'busy-app-secret' },
      graph: { governor },
      send: { via: 'graph', ratePerMinute },
      receive: { via: 'graph', afterFetch: 'markRead', deliver: { queue: { name: 'mail-incoming' } } },
      endpoints: { authority: entra.url, graph: graph.url },
    };
  }

  function appEnv(profile: Record<string, unknown>): NodeJS.ProcessEnv {
    return { ...process.env, AzureWebJobsStorage: azurite.connectionString, MAIL_PROFILES: JSON.stringify({ profiles: { graph: profile } }), BUSY_APP_SECRET: APP.secret };
  }

  async function runInstance<T>(env: NodeJS.ProcessEnv, plan: Record<string, unknown>): Promise<T> {
    const result = await runNode([INSTANCE], { cwd: ROOT, env: { ...env, GOVERNED_INSTANCE: JSON.stringify(plan) } });
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as T;
  }

  function instances(governor: boolean, tag: string): Promise<InstanceReport[]> {
    const env = appEnv(profileOf(governor, 6000));
    return Promise.all([1, 2].map((n) => runInstance<InstanceReport>(env, { tag: `${tag}-${n}`, sends: 16, concurrency: 8, polls: 3 })));
  }

  const throttled = () => graph.requests.filter((r) => r.status === 429);

  it('governed: Graph answers no 429, never sees more than 4 requests in flight, and every send and poll succeeds', async () => {
    const reports = await instances(true, 'governed');
    assert.deepEqual(reports.map((r) => r.failures), [[], []]);
    assert.deepEqual(reports.map((r) => r.sent), [16, 16]);
    assert.equal(graph.sent.length, 32);
    assert.ok(reports.every((r) => r.polls.length === 3 && r.polls.every((s) => s === 'completed' || s === 'leased')), JSON.stringify(reports));
    assert.ok(reports.some((r) => r.polls.includes('completed')));
    assert.deepEqual(throttled().map((r) => `${r.method} ${r.path} ${r.errorCode}`), []);
    assert.deepEqual(reports.map((r) => r.warnings), [[], []]);
    const inFlight = graph.maxInFlight.get(MAILBOX) ?? 0;
    assert.ok(inFlight <= 4, `${inFlight} requests were in flight at once`);
    // The load did press against the limit: requests waited for a slot, as the shared row counts them.
    const runtime = new MailRuntime({ env: appEnv(profileOf(true, 6000)) });
    try {
      const health = (await profilesHealth(runtime)).governor.find((g) => g.profile === 'graph');
      assert.ok((health?.graph?.waits ?? 0) > 0, JSON.stringify(health));
      assert.equal(health?.graph?.throttled, 0);
    } finally {
      await runtime.close();
    }
  });

  it('the same load ungoverned (graph.governor false) meets MailboxConcurrency: the stand-in\'s limit is real and the test above can fail', async () => {
    await instances(false, 'ungoverned');
    assert.ok(throttled().length > 0, 'no 429 without the governor');
    assert.ok(throttled().every((r) => r.errorCode === 'ApplicationThrottled'));
    assert.ok((graph.maxInFlight.get(MAILBOX) ?? 0) > 4);
  });

  it('the send rate holds across them: 20 queued sends at 120 a minute, worked off by both instances at once, reach Graph no sooner than one mailbox\'s pace allows', async () => {
    const rate = 120;
    const env = appEnv(profileOf(true, rate));
    const api = new MailRuntime({ env });
    try {
      for (let i = 0; i < 20; i++) {
        const answer = await acceptSend(api, { profile: 'graph', to: 'alice@example.com', subject: `Queued ${i}`, text: 'Hello.' }, { id: randomUUID(), mode: 'queued' });
        assert.equal(answer.status, 202);
      }
    } finally {
      await api.close();
    }
    const started = Date.now();
    const reports = await Promise.all([1, 2].map(() => runInstance<{ handled: number; warnings: string[] }>(env, { worker: true })));
    assert.ok(reports.every((r) => r.handled > 0), `both instances worked: ${JSON.stringify(reports)}`);
    assert.deepEqual(reports.map((r) => r.warnings), [[], []]);
    const times = graph.apiRequests('POST', /\/sendMail$/).filter((r) => r.status === 202).map((r) => r.receivedAt).sort((a, b) => a - b);
    assert.equal(times.length, 20);
    // From an idle mailbox: 5 at once, then one per 60 / (rate - 4) s, whichever instance sends. A send
    // may arrive late (a cold process, a busy machine), never early, so the k-th arrival is no sooner
    // than the k-th place: a lower bound, a check of the pacing, not of speed.
    const interval = 60_000 / (rate - 4);
    const early = times.map((t, k) => ({ k: k + 1, after: Math.round(t - started), allowed: Math.round(Math.max(0, k + 1 - 5) * interval) })).filter((e) => e.after < e.allowed * 0.97);
    assert.deepEqual(early, []);
    assert.deepEqual(throttled(), []);
  });
});
