import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InvocationContext, type Timer } from '@azure/functions';
import { lifecycleNotifications } from '../../functions/lifecycleNotifications.js';
import { notifications } from '../../functions/notifications.js';
import { poll, pollQueue } from '../../functions/poll.js';
import { pollFallback } from '../../functions/pollFallback.js';
import { pollWorker } from '../../functions/pollWorker.js';
import { subscriptions } from '../../functions/subscriptions.js';
import { profilesHealth } from '../../shared/health/report.js';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { LIFECYCLE_ROUTE, NOTIFICATION_ROUTE } from '../../shared/receive/notificationRoutes.js';
import { fallbackPollRequests, pollRequests } from '../../shared/receive/pollRequests.js';
import { ensureSubscription, renewSubscriptions } from '../../shared/receive/push.js';
import type { ReceivingProfile } from '../../shared/receive/pollMailbox.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { POLL_QUEUE } from '../../shared/state/queueNames.js';
import { MailState, type SubscriptionRecord } from '../../shared/state/index.js';
import type { Attributes, CounterName, Telemetry } from '../../shared/telemetry/names.js';
import { NO_TELEMETRY } from '../../shared/telemetry/index.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { FunctionsHttpHost } from '../support/functionsHttpHost.js';
import { mailErrorOf } from '../support/mailError.js';
import { ReceiveHarness, capturingLogger, composeEml } from '../support/receiveHarness.js';

const TENANT = 'contoso-tenant';
const CLIENT_ID = 'push-app';
const SECRET = 'push-app-secret-value-1';

/** Counts what the app counts, nothing else. */
class CountingTelemetry implements Telemetry {
  readonly enabled = true;
  readonly counted: Array<{ metric: CounterName; attributes: Attributes; value: number }> = [];
  span: Telemetry['span'] = (name, attributes, run) => NO_TELEMETRY.span(name, attributes, run);
  count(metric: CounterName, attributes: Attributes, value = 1): void {
    this.counted.push({ metric, attributes, value });
  }
  record(): void {}
  observe(): void {}
  async flush(): Promise<void> {}
  async shutdown(): Promise<void> {}
  total(metric: CounterName, match: Attributes = {}): number {
    return this.counted.filter((c) => c.metric === metric && Object.entries(match).every(([k, v]) => c.attributes[k as keyof Attributes] === v)).reduce((sum, c) => sum + c.value, 0);
  }
}

const timer: Timer = { isPastDue: false, schedule: { adjustForDST: false }, scheduleStatus: { last: '', next: '', lastUpdated: '' } };

function invocation(name: string): InvocationContext {
  return new InvocationContext({ invocationId: `${name}-${Date.now()}`, functionName: name, logHandler: () => {} });
}

describe('push: Graph change notifications poll a mailbox seconds after mail arrives, delta staying the source of truth', () => {
  const h = new ReceiveHarness();
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  const host = new FunctionsHttpHost().serve(NOTIFICATION_ROUTE, notifications).serve(LIFECYCLE_ROUTE, lifecycleNotifications);
  let seq = 0;
  let name = '';
  let mailbox = '';
  let telemetry: CountingTelemetry;
  let mailState: MailState;

  before(async () => {
    await Promise.all([h.start(), entra.start(), graph.start(), host.start()]);
    entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
    mailState = new MailState(h.env.AzureWebJobsStorage);
  });
  after(async () => {
    setRuntime(undefined);
    await Promise.all([h.stop(), entra.stop(), graph.stop(), host.stop()]);
  });
  beforeEach(async () => {
    h.webhook.reset();
    h.logs.length = 0;
    await drainPollQueue();
    name = `push${++seq}`;
    mailbox = `desk${seq}@contoso.com`;
    graph.addMailbox(mailbox);
    telemetry = new CountingTelemetry();
  });

  function profile(receive: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      mailbox, tenantId: TENANT, clientId: CLIENT_ID,
      auth: { type: 'clientSecret', secret: 'push-app-secret' },
      receive: { via: 'graph', push: true, deliver: { webhook: { url: h.webhook.url, signingSecret: 'hook-signing-key' } }, ...receive },
      endpoints: { authority: entra.url, graph: graph.url },
    };
  }

  /** One app instance: its own runtime over the shared state (Azurite). */
  function instance(): MailRuntime {
    return new MailRuntime({
      env: { ...h.env, PUSH_APP_SECRET: SECRET, NOTIFICATION_URL: host.url, MAIL_PROFILES: JSON.stringify({ profiles: { [name]: profile() } }) },
      logger: capturingLogger(h.logs),
      telemetry,
      state: mailState,
    });
  }

  function pushProfile(runtime: MailRuntime): ReceivingProfile {
    return runtime.profile(name) as ReceivingProfile;
  }

  /** The poll queue's messages, taken off it as the host's queue trigger takes them. */
  async function drainPollQueue(): Promise<Array<Record<string, unknown>>> {
    const queue = await h.state.account.queue(POLL_QUEUE);
    const items: Array<Record<string, unknown>> = [];
    for (;;) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      if (receivedMessageItems.length === 0) return items;
      for (const m of receivedMessageItems) {
        items.push(JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as Record<string, unknown>);
        await queue.deleteMessage(m.messageId, m.popReceipt);
      }
    }
  }

  /** What the queue trigger would do with each message. */
  async function feed(items: Array<Record<string, unknown>>): Promise<void> {
    for (const item of items) await pollWorker(item, invocation('pollWorker'));
  }

  async function mail(n: number): Promise<void> {
    graph.mail.addMessage(mailbox, 'inbox', await composeEml({ from: `user${n}@fabrikam.com`, to: mailbox, subject: `Ticket ${n}`, text: `Help ${n}`, messageId: `<push-${seq}-${n}@fabrikam.com>` }), { receivedAt: new Date(Date.UTC(2024, 2, 1, 9, n)) });
    await graph.subscriptions.settled();
  }

  async function stored(runtime: MailRuntime): Promise<{ record: SubscriptionRecord; etag: string }> {
    const row = await runtime.state.subscriptions.get(name);
    assert.ok(row, 'the subscription row exists');
    return row;
  }

  /** The subscription Graph has for the mailbox now. */
  function liveSubscription() {
    const live = graph.subscriptions.live().filter((s) => s.mailbox === mailbox);
    assert.equal(live.length, 1, 'one live subscription for the mailbox');
    return live[0]!;
  }

  /** First poll: makes the subscription, then reads the (empty) folder. */
  async function firstPoll(): Promise<MailRuntime> {
    const runtime = instance();
    setRuntime(runtime);
    await feed([{ profile: name }]);
    return runtime;
  }

  it('the first poll subscribes (Graph\'s handshake answered by both functions); a message seeded after it reaches the webhook through a notification and the poll queue, no timer involved', async () => {
    const validationsBefore = graph.subscriptions.validations.length;
    const runtime = await firstPoll();
    const sub = liveSubscription();
    const validations = graph.subscriptions.validations.slice(validationsBefore);
    assert.deepEqual(validations.map((v) => [new URL(v.url).pathname, v.status, v.echoed, v.contentType]), [
      [`/api/${NOTIFICATION_ROUTE}`, 200, true, 'text/plain; charset=utf-8'],
      [`/api/${LIFECYCLE_ROUTE}`, 200, true, 'text/plain; charset=utf-8'],
    ]);
    assert.deepEqual(sub.changeType, ['created']);
    assert.match(sub.resource, new RegExp(`^users/${encodeURIComponent(mailbox)}/mailFolders/inbox/messages$`));
    const row = (await stored(runtime)).record;
    assert.equal(row.subscriptionId, sub.id);
    assert.equal(row.clientState, sub.clientState);
    assert.ok(row.clientState!.length >= 32 && row.clientState!.length <= 128);
    assert.equal((await profilesHealth(runtime)).profiles[0]?.push?.state, 'active');

    await mail(1);
    assert.deepEqual(graph.subscriptions.deliveries.filter((d) => d.subscriptionId === sub.id).map((d) => [d.kind, d.status]), [['change', 202]]);
    const queued = await drainPollQueue();
    assert.deepEqual(queued.map((q) => [q.profile, q.reason]), [[name, 'notification']]);
    assert.equal(h.webhook.received.length, 0, 'nothing is delivered before the poll runs');
    await feed(queued);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 1']);
    assert.equal(telemetry.total('mail.notifications', { 'mail.profile': name, 'mail.notification': 'created' }), 1);
  });

  it('a burst of notifications for one mailbox enqueues one poll, which delivers every message once', async () => {
    await firstPoll();
    const sub = liveSubscription();
    for (const n of [2, 3, 4]) await mail(n);
    assert.deepEqual(graph.subscriptions.deliveries.filter((d) => d.subscriptionId === sub.id).map((d) => d.status), [202, 202, 202]);
    const queued = await drainPollQueue();
    assert.equal(queued.length, 1, 'coalesced into one poll');
    await feed(queued);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 2', 'Ticket 3', 'Ticket 4']);
    // The poll cleared its marker when it started: the next notification asks again.
    await mail(5);
    const next = await drainPollQueue();
    assert.equal(next.length, 1);
    await feed(next);
    // A notification lost on the way loses nothing: the next poll reads the delta.
    graph.subscriptions.muted = true;
    await mail(6);
    graph.subscriptions.muted = false;
    await mail(7);
    await feed(await drainPollQueue());
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject).slice(3), ['Ticket 5', 'Ticket 6', 'Ticket 7']);
  });

  it('a notification with a wrong or missing clientState, or for a subscription nobody made, is answered 202, triggers nothing and is counted; a body that is no notification is a 400', async () => {
    const runtime = await firstPoll();
    const sub = liveSubscription();
    const clientState = (await stored(runtime)).record.clientState!;
    graph.subscriptions.forge(sub.id, `${clientState.slice(0, -1)}x`);
    graph.subscriptions.forge(sub.id, null);
    await graph.subscriptions.settled();
    const stranger = await fetch(`${host.url}/api/${NOTIFICATION_ROUTE}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ value: [{ subscriptionId: 'no-such-subscription', clientState, changeType: 'created' }] }) });
    assert.equal(stranger.status, 202);
    assert.deepEqual(graph.subscriptions.deliveries.filter((d) => d.subscriptionId === sub.id).map((d) => d.status), [202, 202]);
    assert.deepEqual(await drainPollQueue(), [], 'no poll was asked for');
    assert.equal(telemetry.total('mail.notifications.ignored', { 'mail.reason': 'clientState' }), 2);
    assert.equal(telemetry.total('mail.notifications.ignored', { 'mail.reason': 'unknownSubscription' }), 1);
    assert.equal(telemetry.total('mail.notifications'), 0);

    const malformed = await fetch(`${host.url}/api/${NOTIFICATION_ROUTE}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ value: 'nope' }) });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.headers.get('content-type'), 'application/problem+json');
    assert.equal(((await malformed.json()) as { code: string }).code, 'EINPUT');
    assert.ok(h.logs.some((l) => /"operation":"notifications"/.test(l) && /clientState/.test(l)), 'the ignored notifications are logged');
    assert.ok(h.logs.every((l) => !l.includes(clientState)), 'the clientState is never logged');
  });

  it('lifecycle: reauthorizationRequired renews, subscriptionRemoved makes a new subscription (with a new clientState), missed reads the delta', async () => {
    const runtime = await firstPoll();
    const first = liveSubscription();
    const patches = () => graph.apiRequests('PATCH', /\/subscriptions\//).length;

    const patchesBefore = patches();
    graph.subscriptions.lifecycle(first.id, 'reauthorizationRequired');
    await graph.subscriptions.settled();
    const renew = await drainPollQueue();
    assert.deepEqual(renew.map((q) => [q.reason, q.subscription]), [['lifecycle', 'renew']]);
    await feed(renew);
    assert.equal(patches(), patchesBefore + 1, 'renewed with a PATCH');
    assert.equal(liveSubscription().id, first.id);

    const oldState = (await stored(runtime)).record.clientState;
    graph.subscriptions.lifecycle(first.id, 'subscriptionRemoved');
    await graph.subscriptions.settled();
    const recreate = await drainPollQueue();
    assert.deepEqual(recreate.map((q) => [q.reason, q.subscription]), [['lifecycle', 'recreate']]);
    const validations = graph.subscriptions.validations.length;
    await feed(recreate);
    const second = liveSubscription();
    assert.notEqual(second.id, first.id);
    assert.equal(graph.subscriptions.validations.length, validations + 2, 'Graph validated both endpoints again');
    const row = (await stored(runtime)).record;
    assert.equal(row.subscriptionId, second.id);
    assert.notEqual(row.clientState, oldState);
    await mail(8);
    await feed(await drainPollQueue());
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 8'], 'the new subscription notifies');

    graph.subscriptions.muted = true;
    await mail(9);
    assert.deepEqual(await drainPollQueue(), [], 'Graph dropped the notification');
    graph.subscriptions.lifecycle(second.id, 'missed');
    await graph.subscriptions.settled();
    graph.subscriptions.muted = false;
    const catchUp = await drainPollQueue();
    assert.deepEqual(catchUp.map((q) => [q.reason, q.subscription]), [['lifecycle', undefined]]);
    await feed(catchUp);
    assert.deepEqual(h.webhook.accepted<DeliveredMessage>().map((m) => m.subject), ['Ticket 8', 'Ticket 9']);
  });

  it('two app instances renewing at once: one PATCH; a subscription that expired at Graph is made anew by one of them', async () => {
    const a = instance();
    const b = instance();
    assert.equal((await ensureSubscription(a, pushProfile(a))).outcome, 'created');
    const first = liveSubscription();
    const due = async (expiresAt: Date) => {
      const row = await stored(a);
      await a.state.subscriptions.put({ ...row.record, expiresAt: expiresAt.toISOString() }, row.etag);
    };

    await due(new Date(Date.now() + 3600_000));
    const patches = graph.apiRequests('PATCH', /\/subscriptions\//).length;
    const renewed = await Promise.all([renewSubscriptions(a), renewSubscriptions(b)]);
    assert.deepEqual(renewed.flat().map((r) => r.outcome).filter((o) => o === 'renewed'), ['renewed'], JSON.stringify(renewed));
    assert.equal(graph.apiRequests('PATCH', /\/subscriptions\//).length, patches + 1, 'exactly one renewal reached Graph');
    assert.ok(Date.parse((await stored(b)).record.expiresAt!) > Date.now() + 6 * 24 * 3600_000, 'renewed to almost a week');

    graph.subscriptions.expire(first.id);
    const sentBefore = graph.subscriptions.deliveries.length;
    await mail(20);
    assert.equal(graph.subscriptions.deliveries.length, sentBefore, 'an expired subscription notifies nobody');
    await due(new Date(Date.now() - 60_000));
    const posts = graph.apiRequests('POST', /\/subscriptions$/).length;
    const recreated = await Promise.all([renewSubscriptions(a), renewSubscriptions(b)]);
    assert.deepEqual(recreated.flat().map((r) => r.outcome).filter((o) => o === 'created'), ['created'], JSON.stringify(recreated));
    assert.equal(graph.apiRequests('POST', /\/subscriptions$/).length, posts + 1, 'one new subscription');
    const second = liveSubscription();
    assert.notEqual(second.id, first.id);
    assert.equal((await stored(a)).record.subscriptionId, second.id);
    assert.deepEqual((await drainPollQueue()).map((q) => [q.profile, q.reason]), [[name, 'timer']], 'a poll reads what came while there was no subscription');
  });

  it('a failed renewal shows in health and the log, and the profile goes back to the regular poll timer until a renewal succeeds', async () => {
    const runtime = instance();
    const p = pushProfile(runtime);
    await ensureSubscription(runtime, p);
    assert.deepEqual((await pollRequests(runtime)).map((r) => r.profile), [], 'an active push profile is left to notifications');
    assert.deepEqual((await fallbackPollRequests(runtime)).map((r) => r.profile), [name], 'and to the fallback timer');

    graph.inject({ status: 403, code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.', match: /^PATCH .*\/subscriptions\//, times: 2 });
    const failed = await ensureSubscription(runtime, p, { action: 'renew' });
    assert.equal(failed.outcome, 'failed');
    assert.equal(failed.error?.code, 'EAUTH');
    const health = await profilesHealth(runtime);
    assert.equal(health.ok, false);
    assert.deepEqual([health.profiles[0]?.push?.state, health.profiles[0]?.push?.consecutiveFailures, health.profiles[0]?.push?.lastError?.code], ['failing', 1, 'EAUTH']);
    assert.ok(!JSON.stringify(health).includes((await stored(runtime)).record.clientState!), 'health never shows the clientState');
    assert.ok(h.logs.some((l) => /"operation":"subscription"/.test(l) && /"code":"EAUTH"/.test(l)), 'the failure is logged');
    assert.deepEqual((await pollRequests(runtime)).map((r) => r.profile), [name], 'polled on the regular schedule again');
    assert.deepEqual(await fallbackPollRequests(runtime), []);
    const subscriptionCalls = graph.apiRequests(undefined, /\/subscriptions/).length;
    setRuntime(runtime);
    await feed([{ profile: name, reason: 'timer' }]);
    assert.equal(graph.apiRequests(undefined, /\/subscriptions/).length, subscriptionCalls, 'a poll leaves a failing subscription to the renewal timer');

    graph.clearFaults();
    assert.equal((await renewSubscriptions(runtime))[0]?.outcome, 'renewed');
    const recovered = (await profilesHealth(runtime)).profiles[0]?.push;
    assert.deepEqual([recovered?.state, recovered?.consecutiveFailures, recovered?.lastError?.code], ['active', 0, 'EAUTH'], 'the last error stays visible, with its time');
    assert.deepEqual((await pollRequests(runtime)).map((r) => r.profile), []);
  });

  it('the timers: subscriptions makes a missing subscription (and asks for a poll); then poll leaves the profile out and pollFallback names it', async () => {
    const runtime = instance();
    setRuntime(runtime);
    await subscriptions(timer, invocation('subscriptions'));
    assert.equal((await stored(runtime)).record.subscriptionId, liveSubscription().id);
    assert.deepEqual((await drainPollQueue()).map((q) => q.profile), [name]);
    const regular = invocation('poll');
    await poll(timer, regular);
    assert.deepEqual(regular.extraOutputs.get(pollQueue), []);
    const fallback = invocation('pollFallback');
    await pollFallback(timer, fallback);
    assert.deepEqual((fallback.extraOutputs.get(pollQueue) as Array<{ profile: string; reason: string }>).map((r) => [r.profile, r.reason]), [[name, 'fallback']]);
  });

  it('a poll-pending marker left by a lost poll goes stale: a later notification enqueues again', async () => {
    const runtime = instance();
    const store = runtime.state.subscriptions;
    const now = new Date();
    assert.equal(await store.claimPoll(name, { now, staleAfterMs: 600_000 }), true);
    assert.equal(await store.claimPoll(name, { now: new Date(now.getTime() + 60_000), staleAfterMs: 600_000 }), false, 'pending: coalesced');
    assert.equal(await store.claimPoll(name, { now: new Date(now.getTime() + 601_000), staleAfterMs: 600_000 }), true, 'stale: taken over');
    await store.clearPoll(name);
    assert.equal(await store.claimPoll(name, { now, staleAfterMs: 600_000 }), true, 'cleared: claimed anew');
  });

  it('a notification\'s poll that finds the mailbox leased by another worker asks again, 30 seconds later', async () => {
    await firstPoll();
    const queue = await h.state.account.queue(POLL_QUEUE);
    const lease = await h.state.leases.acquire(mailbox);
    assert.ok(lease, 'the test holds the mailbox as another worker would');
    try {
      await feed([{ profile: name, reason: 'notification' }]);
      await feed([{ profile: name, reason: 'timer' }]);
    } finally {
      await lease.release();
    }
    assert.deepEqual(await drainPollQueue(), [], 'nothing visible yet');
    assert.equal((await queue.getProperties()).approximateMessagesCount, 1, 'one poll waits, for the notification\'s request only');
  });

  it('receive.push is for Graph receive profiles only, and needs NOTIFICATION_URL as an https URL', () => {
    const imap = { ...profile(), receive: { via: 'imap', push: true, deliver: { queue: { name: 'mail-in' } } } };
    const error = mailErrorOf(() => h.runtime({ box: imap }, { NOTIFICATION_URL: host.url }));
    assert.deepEqual([error.code, error.profile, error.field], ['ECONFIG', 'box', 'receive.push']);
    assert.match(error.message, /receive\.push is only for receive\.via "graph"/);
    const missing = mailErrorOf(() => h.runtime({ box: profile() }));
    assert.deepEqual([missing.code, missing.field], ['ECONFIG', 'NOTIFICATION_URL']);
    const plain = mailErrorOf(() => h.runtime({ box: profile() }, { NOTIFICATION_URL: 'http://app.contoso.com' }));
    assert.deepEqual([plain.code, plain.field], ['ECONFIG', 'NOTIFICATION_URL']);
    const keyed = mailErrorOf(() => h.runtime({ box: profile() }, { NOTIFICATION_URL: 'https://app.contoso.com/?code=abc' }));
    assert.deepEqual([keyed.code, keyed.field], ['ECONFIG', 'NOTIFICATION_URL']);
    assert.doesNotMatch(keyed.message, /abc/, 'the value is not repeated');
  });
});
