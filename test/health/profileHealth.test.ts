import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { TableClient } from '@azure/data-tables';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { health } from '../../functions/health.js';
import { healthProfiles } from '../../functions/healthProfiles.js';
import { pollNow } from '../../functions/pollNow.js';
import { pollWorker } from '../../functions/pollWorker.js';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { isMailError } from '../../shared/errors.js';
import { profilesHealth, type ProfileHealth, type ProfilesHealthReport } from '../../shared/health/report.js';
import { pollMailbox, type PollResult } from '../../shared/receive/pollMailbox.js';
import { recordPollOutcome } from '../../shared/receive/pollStatus.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { POLL_STATUS_TABLE } from '../../shared/state/pollStatusStore.js';
import { ImapPeer } from '../peers/imapPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { ReceiveHarness, capturingLogger, composeEml, dropEml } from '../support/receiveHarness.js';
import { runNode } from '../support/runNode.js';

const TENANT = 'contoso-tenant';
const CLIENT_ID = 'health-app';
const SECRET = 'health-app-secret-Zq8~value';
const IMAP_MAILBOX = 'helpdesk@contoso.com';

function invocation(name: string): InvocationContext {
  return new InvocationContext({ invocationId: `${name}-${Date.now()}`, functionName: name, logHandler: () => {} });
}

function get(route: string): HttpRequest {
  return new HttpRequest({ method: 'GET', url: `http://localhost/api/${route}` });
}

function pollRequest(name: string): HttpRequest {
  return new HttpRequest({ method: 'POST', url: `http://localhost/api/profiles/${name}/poll`, params: { name } });
}

function json<T = Record<string, unknown>>(response: HttpResponseInit): T {
  assert.equal(typeof response.body, 'string');
  return JSON.parse(response.body as string) as T;
}

async function profileHealth(name: string): Promise<{ report: ProfilesHealthReport; profile: ProfileHealth }> {
  const response = await healthProfiles(get('health/profiles'), invocation('healthProfiles'));
  assert.equal(response.status, 200, String(response.body));
  const report = json<ProfilesHealthReport>(response);
  const profile = report.profiles.find((p) => p.name === name);
  assert.ok(profile, `${name} is not in ${response.body as string}`);
  return { report, profile };
}

describe('per-profile health: each poll is recorded, GET /api/health/profiles shows it, GET /api/health counts it', () => {
  const h = new ReceiveHarness();
  const entra = new TokenEndpointPeer();
  before(async () => {
    await Promise.all([h.start(), entra.start()]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
  });
  after(async () => {
    setRuntime(undefined);
    await Promise.all([h.stop(), entra.stop()]);
  });
  beforeEach(() => {
    h.webhook.reset();
    h.logs.length = 0;
  });

  const message = (n: number) => composeEml({ from: `user${n}@fabrikam.com`, to: 'desk@contoso.com', subject: `Health ${n}`, text: 'hello', messageId: `<health-${n}@fabrikam.com>` });

  it('a completed poll (pollNow) shows as ok with its time, its counts and when it last delivered', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(1), 1);
    dropEml(inbox, 'two.eml', await message(2), 2);
    const profile = h.fileProfile(inbox);
    setRuntime(h.runtime({ deskOk: profile }));
    const before = Date.now();
    assert.equal((await pollNow(pollRequest('deskOk'), invocation('pollNow'))).status, 200);

    const { report, profile: shown } = await profileHealth('deskOk');
    assert.equal(report.ok, true);
    assert.equal(report.staleAfterSeconds, 300);
    assert.deepEqual(
      [shown.mailbox, shown.via, shown.state, shown.stale, shown.lastStatus, shown.consecutiveFailures, shown.lastError],
      [profile.mailbox, 'file', 'ok', false, 'completed', 0, null],
    );
    assert.deepEqual({ ...shown.lastCounts, durationMs: 0 }, { delivered: 2, filtered: 0, duplicates: 0, deadLettered: 0, oversized: 0, durationMs: 0 });
    const lastPollAt = Date.parse(shown.lastPollAt ?? '');
    assert.ok(lastPollAt >= before && lastPollAt <= Date.now(), shown.lastPollAt ?? 'no lastPollAt');
    assert.equal(shown.lastCompletedAt, shown.lastPollAt);
    assert.equal(shown.lastDeliveredAt, shown.lastPollAt);

    // A second poll finds nothing new: it completes later, and the last delivery keeps its time.
    await pollNow(pollRequest('deskOk'), invocation('pollNow'));
    const again = (await profileHealth('deskOk')).profile;
    assert.equal(again.lastCounts?.delivered, 0);
    assert.equal(again.lastDeliveredAt, shown.lastDeliveredAt);
    assert.ok(Date.parse(again.lastPollAt ?? '') >= lastPollAt);
  });

  it('an IMAP server refusing the token (pollWorker, twice) shows failing, consecutiveFailures 2, EAUTH with its hint, and no secret or token', async (t) => {
    const imap = await new ImapPeer(entra, { mailbox: IMAP_MAILBOX, grantedClients: ['some-other-app'] }).start();
    t.after(() => imap.stop());
    imap.append('INBOX', await message(3));
    setRuntime(h.runtime({
      imapRefused: {
        mailbox: IMAP_MAILBOX,
        tenantId: TENANT,
        clientId: CLIENT_ID,
        auth: { type: 'clientSecret', secret: 'health-app-secret' },
        receive: { via: 'imap', deliver: { webhook: { url: h.webhook.url, signingSecret: 'hook-signing-key' } } },
        endpoints: { authority: entra.url, imap: imap.endpoint },
      },
    }, { HEALTH_APP_SECRET: SECRET }));

    await pollWorker({ profile: 'imapRefused' }, invocation('pollWorker'));
    await pollWorker({ profile: 'imapRefused' }, invocation('pollWorker'));

    const response = await healthProfiles(get('health/profiles'), invocation('healthProfiles'));
    const report = json<ProfilesHealthReport>(response);
    const shown = report.profiles[0]!;
    assert.equal(report.ok, false);
    assert.deepEqual([shown.name, shown.state, shown.lastStatus, shown.consecutiveFailures, shown.lastCompletedAt, shown.lastDeliveredAt], ['imapRefused', 'failing', 'failed', 2, null, null]);
    assert.equal(shown.lastError?.code, 'EAUTH');
    assert.match(shown.lastError?.hint ?? '', /IMAP/);
    assert.equal(shown.lastError?.at, shown.lastPollAt);
    assert.ok(imap.authAttempts.length >= 2, 'the server was asked');
    assert.ok(entra.issued.size > 0, 'tokens were issued');
    for (const hidden of [SECRET, ...entra.issued.keys()]) assert.ok(!(response.body as string).includes(hidden), 'a secret or token is in the health report');
    assert.equal(h.webhook.received.length, 0);
  });

  it('a failing sink counts failures; the next completed poll clears the count and keeps the last error with its time', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(4), 1);
    setRuntime(h.runtime({ sinkDown: h.fileProfile(inbox) }, { WEBHOOK_MAX_ATTEMPTS: '1' }));
    h.webhook.answer({ status: 503 }, { status: 503 });
    await pollNow(pollRequest('sinkDown'), invocation('pollNow'));
    await pollNow(pollRequest('sinkDown'), invocation('pollNow'));
    const failing = (await profileHealth('sinkDown')).profile;
    assert.deepEqual([failing.state, failing.consecutiveFailures, failing.lastError?.code], ['failing', 2, 'ESINK_UNAVAILABLE']);

    assert.equal((await pollNow(pollRequest('sinkDown'), invocation('pollNow'))).status, 200);
    const recovered = (await profileHealth('sinkDown')).profile;
    assert.deepEqual([recovered.state, recovered.lastStatus, recovered.consecutiveFailures, recovered.lastCounts?.delivered], ['ok', 'completed', 0, 1]);
    assert.deepEqual(recovered.lastError, failing.lastError);
    assert.ok(Date.parse(recovered.lastError?.at ?? '') < Date.parse(recovered.lastPollAt ?? ''));
  });

  it('a profile is stale when its last completed poll is older than HEALTH_STALE_AFTER_SECONDS (default 300), and when it was never polled', async () => {
    const runtime = h.runtime({ polled: h.fileProfile(h.folder('inbox')), neverPolled: h.fileProfile(h.folder('inbox')) });
    const result = await pollAndRecordAt(runtime, 'polled', new Date('2030-01-01T12:00:00Z'));
    assert.equal(result.status, 'completed');

    const fresh = await profilesHealth(runtime, { now: new Date('2030-01-01T12:05:00Z') });
    assert.deepEqual(fresh.profiles.map((p) => [p.name, p.state, p.stale]), [['polled', 'ok', false], ['neverPolled', 'stale', true]]);
    assert.deepEqual(
      [fresh.profiles[1]!.lastPollAt, fresh.profiles[1]!.lastStatus, fresh.profiles[1]!.lastCounts, fresh.profiles[1]!.consecutiveFailures],
      [null, null, null, 0],
    );
    const later = await profilesHealth(runtime, { now: new Date('2030-01-01T12:05:01Z') });
    assert.deepEqual(later.profiles.map((p) => p.state), ['stale', 'stale']);
    assert.equal(later.ok, false);

    const shorter = h.runtime({ polled: h.fileProfile(h.folder('inbox')) }, { HEALTH_STALE_AFTER_SECONDS: '60' });
    const at61 = await profilesHealth(shorter, { now: new Date('2030-01-01T12:01:01Z') });
    assert.deepEqual([at61.staleAfterSeconds, at61.profiles[0]!.stale], [60, true]);
    assert.equal((await profilesHealth(shorter, { now: new Date('2030-01-01T12:01:00Z') })).profiles[0]!.stale, false);
  });

  it('a failing profile that has not completed within the window is both failing and stale; it counts as failing', async () => {
    const runtime = h.runtime({ flaky: h.fileProfile(h.folder('inbox')) });
    await recordPollOutcome(runtime, outcome('flaky', 'completed'), { now: new Date('2030-02-01T00:00:00Z') });
    await recordPollOutcome(runtime, outcome('flaky', 'failed'), { now: new Date('2030-02-01T00:10:00Z') });
    const shown = (await profilesHealth(runtime, { now: new Date('2030-02-01T00:10:00Z') })).profiles[0]!;
    assert.deepEqual([shown.state, shown.stale, shown.consecutiveFailures, shown.lastCompletedAt], ['failing', true, 1, '2030-02-01T00:00:00.000Z']);
  });

  it('an aborted poll (deadline, lost lease) neither counts a failure nor clears one, and is not a completed poll', async () => {
    const runtime = h.runtime({ slow: h.fileProfile(h.folder('inbox')) });
    await recordPollOutcome(runtime, outcome('slow', 'failed'), { now: new Date('2030-03-01T00:00:00Z') });
    await recordPollOutcome(runtime, { ...outcome('slow', 'aborted'), delivered: 5 }, { now: new Date('2030-03-01T00:01:00Z') });
    const shown = (await profilesHealth(runtime, { now: new Date('2030-03-01T00:01:00Z') })).profiles[0]!;
    assert.deepEqual([shown.lastStatus, shown.consecutiveFailures, shown.lastCompletedAt, shown.lastDeliveredAt, shown.state], ['aborted', 1, null, '2030-03-01T00:01:00.000Z', 'stale']);
  });

  it('two outcomes recorded at once for one profile are both counted (ETag-conditional writes)', async () => {
    const runtime = h.runtime({ racing: h.fileProfile(h.folder('inbox')) });
    await Promise.all([recordPollOutcome(runtime, outcome('racing', 'failed')), recordPollOutcome(runtime, outcome('racing', 'failed')), recordPollOutcome(runtime, outcome('racing', 'failed'))]);
    assert.equal((await profilesHealth(runtime)).profiles[0]!.consecutiveFailures, 3);
    assert.ok(!h.logs.some((l) => l.includes('poll.status')), h.logs.join('\n'));
  });

  it('a leased poll (another worker held the mailbox) is not recorded: the worker that polled records its outcome', async () => {
    const runtime = h.runtime({ sharedBox: h.fileProfile(h.folder('inbox')) });
    await recordPollOutcome(runtime, outcome('sharedBox', 'completed'), { now: new Date('2030-04-01T00:00:00Z') });
    await recordPollOutcome(runtime, outcome('sharedBox', 'leased'), { now: new Date('2030-04-01T00:01:00Z') });
    const shown = (await profilesHealth(runtime, { now: new Date('2030-04-01T00:01:00Z') })).profiles[0]!;
    assert.deepEqual([shown.lastStatus, shown.lastPollAt], ['completed', '2030-04-01T00:00:00.000Z']);
  });

  it('an unreadable status row shows its profile as never polled (stale), with a warning; the next poll replaces it', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(5), 1);
    setRuntime(h.runtime({ oddRow: h.fileProfile(inbox), fine: h.fileProfile(h.folder('inbox')) }));
    await recordPollOutcome(h.runtime({ fine: h.fileProfile(h.folder('inbox')) }), outcome('fine', 'completed'));
    const table = await statusTable();
    await table.upsertEntity({ partitionKey: 'poll', rowKey: 'oddRow', profile: 'oddRow', lastStatus: 'exploded' });

    const before = await profileHealth('oddRow');
    assert.deepEqual([before.profile.state, before.profile.lastPollAt], ['stale', null]);
    assert.equal(before.report.profiles.find((p) => p.name === 'fine')?.state, 'ok', 'the other profiles are still reported');
    assert.ok(h.logs.some((l) => l.includes('"operation":"health"') && l.includes('oddRow') && l.includes('not readable')), h.logs.join('\n'));

    assert.equal((await pollNow(pollRequest('oddRow'), invocation('pollNow'))).status, 200);
    const after = (await profileHealth('oddRow')).profile;
    assert.deepEqual([after.state, after.lastStatus, after.lastCounts?.delivered], ['ok', 'completed', 1]);
  });

  it('a poll whose outcome cannot be recorded still answers its result; the failure is a logged warning', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(7), 1);
    setRuntime(h.runtime({ unrecordable: h.fileProfile(inbox) }));
    const table = await statusTable();
    // The process created the table once and keeps using it: gone, every write to it fails.
    await table.deleteTable();
    try {
      const response = await pollNow(pollRequest('unrecordable'), invocation('pollNow'));
      assert.equal(response.status, 200);
      assert.deepEqual([json(response).status, json(response).delivered], ['completed', 1]);
      const warning = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.operation === 'poll.status');
      assert.deepEqual([warning?.profile, warning?.outcome, warning?.code], ['unrecordable', 'error', 'ESTATE']);
    } finally {
      await table.createTable();
    }
  });

  async function statusTable(): Promise<TableClient> {
    const table = TableClient.fromConnectionString(h.azurite.connectionString, POLL_STATUS_TABLE, { allowInsecureConnection: true });
    await table.createTable();
    return table;
  }

  it('m365-mail poll records its outcome; m365-mail health prints the per-profile report and exits 1 unless every profile is ok', async () => {
    const inbox = h.folder('inbox');
    dropEml(inbox, 'one.eml', await message(6), 1);
    const polled = { fromCli: h.fileProfile(inbox) };
    const withNever = { ...polled, cliNever: h.fileProfile(h.folder('inbox')) };
    const cli = (args: string[], profiles: Record<string, unknown>) => {
      const env: NodeJS.ProcessEnv = { ...process.env, ...h.env, MAIL_PROFILES: JSON.stringify({ profiles }) };
      for (const key of ['MAIL_PROFILES_FILE', 'DEFAULT_PROFILE', 'KEY_VAULT_URL', 'HEALTH_STALE_AFTER_SECONDS']) delete env[key];
      return runNode([path.join(APP_ROOT, 'dist', 'cli', 'm365-mail.js'), ...args], { cwd: APP_ROOT, env });
    };
    const poll = await cli(['poll', '--profile', 'fromCli'], polled);
    assert.equal(poll.code, 0, poll.stderr);
    const shown = (await profilesHealth(h.runtime(polled))).profiles[0]!;
    assert.deepEqual([shown.lastStatus, shown.lastCounts?.delivered, shown.state], ['completed', 1, 'ok']);

    const healthy = await cli(['health'], polled);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.deepEqual((JSON.parse(healthy.stdout) as ProfilesHealthReport).profiles.map((p) => [p.name, p.state]), [['fromCli', 'ok']]);
    const unhealthy = await cli(['health'], withNever);
    assert.equal(unhealthy.code, 1, unhealthy.stderr);
    const report = JSON.parse(unhealthy.stdout) as ProfilesHealthReport;
    assert.deepEqual([report.ok, ...report.profiles.map((p) => [p.name, p.state])], [false, ['fromCli', 'ok'], ['cliNever', 'stale']]);
  });

  it('state storage that does not answer ends the health read at its time limit with ESTATE, instead of holding the probe', async () => {
    const runtime = h.runtime({ frozenDesk: h.fileProfile(h.folder('inbox')) });
    h.azurite.freeze();
    try {
      await assert.rejects(profilesHealth(runtime, { abortSignal: AbortSignal.timeout(300) }), (e) => isMailError(e) && e.code === 'ESTATE');
    } finally {
      h.azurite.thaw();
    }
  });

  describe('GET /api/health (anonymous)', () => {
    it('answers 200 with counts of ok, failing and stale receiving profiles, and no profile name, mailbox or error text', async () => {
      const profiles = { alphaDesk: h.fileProfile(h.folder('inbox')), betaDesk: h.fileProfile(h.folder('inbox')), gammaDesk: h.fileProfile(h.folder('inbox')), sendOnly: { mailbox: 'outbound-only@contoso.com', auth: { type: 'none' }, send: { via: 'file' } } };
      const runtime = h.runtime(profiles);
      setRuntime(runtime);
      await recordPollOutcome(runtime, outcome('alphaDesk', 'completed'));
      await recordPollOutcome(runtime, { ...outcome('betaDesk', 'failed'), error: { code: 'EAUTH', message: 'IMAP refused betaDesk@contoso.com', hint: 'grant betaDesk' } });

      const response = await health(get('health'), invocation('health'));
      assert.equal(response.status, 200, 'a failing mailbox is not a dead process: restarting the instance would not fix it');
      assert.deepEqual(json(response), { status: 'ok', profiles: 4, source: 'MAIL_PROFILES', receiving: { ok: 1, failing: 1, stale: 1 } });
      const body = (response.body as string).toLowerCase();
      for (const [name, profile] of Object.entries(profiles)) {
        assert.ok(!body.includes(name.toLowerCase()), `${name} is in the anonymous body`);
        assert.ok(!body.includes(profile.mailbox as string), `${profile.mailbox as string} is in the anonymous body`);
      }
      assert.ok(!body.includes('eauth') && !body.includes('refused'));
    });

    it('answers 200 without touching storage when no profile receives', async () => {
      setRuntime(new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify({ profiles: { robot: { mailbox: 'robot@contoso.com', auth: { type: 'none' }, send: { via: 'file' } } } }) } }));
      const response = await health(get('health'), invocation('health'));
      assert.equal(response.status, 200);
      assert.deepEqual(json(response), { status: 'ok', profiles: 1, source: 'MAIL_PROFILES', receiving: { ok: 0, failing: 0, stale: 0 } });
    });

    it('answers 503 ECONFIG, naming neither profile nor field, when the profiles document is invalid; the log names them', async () => {
      const logs: string[] = [];
      const saved = process.env.MAIL_PROFILES;
      process.env.MAIL_PROFILES = JSON.stringify({ profiles: { secretDesk: { mailbox: 'not-an-address', auth: { type: 'none' }, send: { via: 'file' } } } });
      setRuntime(undefined);
      try {
        const context = new InvocationContext({ invocationId: 'inv-health', functionName: 'health', logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) });
        const response = await health(get('health'), context);
        assert.equal(response.status, 503);
        const problem = json(response);
        assert.deepEqual([problem.code, problem.status, problem.profile, problem.field], ['ECONFIG', 503, undefined, undefined]);
        assert.ok(!(response.body as string).includes('secretDesk') && !(response.body as string).includes('not-an-address'), response.body as string);
        assert.ok(logs.some((l) => l.includes('secretDesk') && l.includes('inv-health')), logs.join('\n'));

        const detailed = await healthProfiles(get('health/profiles'), invocation('healthProfiles'));
        assert.equal(detailed.status, 500);
        assert.deepEqual([json(detailed).code, json(detailed).profile, json(detailed).field], ['ECONFIG', 'secretDesk', 'mailbox']);
      } finally {
        if (saved === undefined) delete process.env.MAIL_PROFILES;
        else process.env.MAIL_PROFILES = saved;
        setRuntime(undefined);
      }
    });

    it('answers 503 ECONFIG when HEALTH_STALE_AFTER_SECONDS is not a whole number of seconds (checked with every setting when the runtime starts)', async () => {
      const saved = process.env.HEALTH_STALE_AFTER_SECONDS;
      process.env.HEALTH_STALE_AFTER_SECONDS = '5min';
      setRuntime(undefined);
      try {
        const response = await health(get('health'), invocation('health'));
        assert.deepEqual([response.status, json(response).code], [503, 'ECONFIG']);
        const detailed = await healthProfiles(get('health/profiles'), invocation('healthProfiles'));
        assert.deepEqual([json(detailed).code, json(detailed).field], ['ECONFIG', 'HEALTH_STALE_AFTER_SECONDS']);
      } finally {
        if (saved === undefined) delete process.env.HEALTH_STALE_AFTER_SECONDS;
        else process.env.HEALTH_STALE_AFTER_SECONDS = saved;
        setRuntime(undefined);
      }
    });

    it('answers 503 ESTATE when state storage does not answer', async () => {
      const dead = h.azurite.connectionString.replace(/TableEndpoint=http:\/\/127\.0\.0\.1:\d+/, 'TableEndpoint=http://127.0.0.1:9');
      setRuntime(new MailRuntime({ env: { ...h.env, AzureWebJobsStorage: dead, MAIL_PROFILES: JSON.stringify({ profiles: { deskY: h.fileProfile(h.folder('inbox')) } }) }, logger: capturingLogger([]) }));
      const response = await health(get('health'), invocation('health'));
      assert.deepEqual([response.status, json(response).code], [503, 'ESTATE']);
      assert.ok(!(response.body as string).includes('deskY'));
    });
  });
});

function outcome(profile: string, status: PollResult['status']): PollResult {
  return {
    profile,
    status,
    delivered: 0,
    oversized: 0,
    filtered: 0,
    duplicates: 0,
    deadLettered: 0,
    resynced: false,
    durationMs: 12,
    ...(status === 'failed' && { error: { code: 'ECONNECTION' as const, message: 'could not connect', hint: 'check the host' } }),
  };
}

/** A real poll whose outcome is recorded at a given time, as pollAndRecord does at the clock's. */
async function pollAndRecordAt(runtime: MailRuntime, profile: string, now: Date): Promise<PollResult> {
  const result = await pollMailbox(runtime, profile);
  await recordPollOutcome(runtime, result, { now });
  return result;
}
