import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { GOVERNOR_TABLE } from '../../shared/governor/governorTable.js';
import { profilesHealth } from '../../shared/health/report.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { clearGovernorState } from '../support/governorState.js';
import { MAILBOX, SendHarness } from '../support/sendHarness.js';
import { mailErrorFrom } from '../support/mailError.js';

describe('the Graph request budget of an app and mailbox (graph.requestsPer10Minutes), kept in storage', () => {
  const h = SendHarness.forSuite();

  beforeEach(() => clearGovernorState(h.state.account));

  function profiles(graph: Record<string, unknown>): string {
    const base = JSON.parse(String(h.useRuntime().env.MAIL_PROFILES)) as { profiles: Record<string, Record<string, unknown>> };
    const profile: Record<string, unknown> = { ...base.profiles.graph!, graph };
    (profile.send as Record<string, unknown>).ratePerMinute = 6000;
    return JSON.stringify({ profiles: { graph: profile } });
  }

  const message = (i: number) => ({ profile: 'graph', to: 'alice@example.com', subject: `Budget ${i}`, text: 'Hello.' });

  it('a restarted instance does not lose the budget: after 8 of 12 requests and a new runtime on the same storage, 4 more go and the next is ETHROTTLED with Retry-After, never reaching Graph', async () => {
    const MAIL_PROFILES = profiles({ requestsPer10Minutes: 12 });
    const first = h.useRuntime({ MAIL_PROFILES });
    for (let i = 0; i < 8; i++) await sendMail(first, message(i));
    await first.close();

    const restarted = h.useRuntime({ MAIL_PROFILES });
    const health = await profilesHealth(restarted);
    const graph = health.governor.find((g) => g.profile === 'graph')?.graph;
    assert.equal(graph?.limit, 12);
    assert.equal(graph?.used, 8, JSON.stringify(health.governor));
    assert.equal(graph?.left, 4);
    for (let i = 8; i < 12; i++) await sendMail(restarted, message(i));
    const before = h.graph.requests.length;
    const refused = await mailErrorFrom(sendMail(restarted, message(12)));
    assert.equal(refused.code, 'ETHROTTLED');
    assert.ok(refused.retryAfter !== undefined && refused.retryAfter > 0 && refused.retryAfter <= 600, `retryAfter ${refused.retryAfter}`);
    assert.match(refused.message, /budget/);
    assert.equal(h.graph.requests.length, before, 'the refused request never reached Graph');
    assert.equal(h.graph.sent.length, 12);
    assert.equal(h.graph.requests.filter((r) => r.status === 429).length, 0);
  });

  it('the sync API answers a spent budget with 429 and Retry-After', async () => {
    const MAIL_PROFILES = profiles({ requestsPer10Minutes: 1 });
    h.useRuntime({ MAIL_PROFILES });
    assert.equal((await h.post(message(0))).status, 200);
    const refused = await h.post(message(1));
    assert.equal(refused.status, 429, refused.raw);
    assert.equal(refused.body.code, 'ETHROTTLED');
    assert.ok(Number(refused.headers['retry-after']) > 0);
  });

  it('a 429 Graph gives anyway is counted in storage, and healthProfiles shows it with the budget', async () => {
    h.useRuntime({ MAIL_PROFILES: profiles({}) });
    h.graph.inject({ status: 429, code: 'ApplicationThrottled', message: 'Application is over its MailboxConcurrency limit.', retryAfter: 1, match: /sendMail$/ });
    await sendMail(h.useRuntime({ MAIL_PROFILES: profiles({}) }), message(0));
    const runtime = h.useRuntime({ MAIL_PROFILES: profiles({}) });
    // The count is written off the request's path: read until it is there.
    let graph;
    for (let i = 0; i < 50 && (graph?.throttled ?? 0) === 0; i++) {
      graph = (await profilesHealth(runtime)).governor.find((g) => g.profile === 'graph')?.graph;
      if ((graph?.throttled ?? 0) === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(graph?.throttled, 1);
    assert.equal(graph?.limit, 10_000);
    assert.ok(graph !== undefined && graph.used >= 2 && graph.left <= 9_998, JSON.stringify(graph));
    assert.equal(graph?.maxConcurrent, 4);
  });

  it('names profiles.<name>.graph.<field> in the ECONFIG for limits Graph does not allow', () => {
    for (const [graph, field] of [[{ maxConcurrent: 5 }, 'graph.maxConcurrent'], [{ requestsPer10Minutes: 0 }, 'graph.requestsPer10Minutes'], [{ governor: 'off' }, 'graph.governor']] as const) {
      assert.throws(() => h.useRuntime({ MAIL_PROFILES: profiles(graph) }), (error: unknown) => {
        const e = error as { code?: string; field?: string; hint?: string };
        return e.code === 'ECONFIG' && e.field === field && e.hint?.includes(`profiles.graph.${field}`) === true;
      }, JSON.stringify(graph));
    }
    const base = JSON.parse(profiles({})) as { profiles: { graph: { send: Record<string, unknown> } } };
    base.profiles.graph.send.ratePerMinute = 0;
    assert.throws(() => h.useRuntime({ MAIL_PROFILES: JSON.stringify(base) }), (error: unknown) => (error as { field?: string }).field === 'send.ratePerMinute');
  });

  it('graph.governor false leaves the profile ungoverned: no budget row is written', async () => {
    const runtime = h.useRuntime({ MAIL_PROFILES: profiles({ governor: false }) });
    await sendMail(runtime, message(0));
    const table = await h.state.account.table(GOVERNOR_TABLE);
    const rows: string[] = [];
    for await (const row of table.listEntities()) rows.push(decodeURIComponent(row.partitionKey!));
    assert.deepEqual(rows.filter((r) => r.startsWith('graph|')), []);
    assert.deepEqual(rows, [`send|${MAILBOX}`], 'the send is still paced');
  });
});
