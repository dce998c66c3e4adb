import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { OtlpReceiverPeer, type ReceivedSpan } from '../peers/otlpReceiver.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { composeEml, HOOK_SECRET, ReceiveHarness } from '../support/receiveHarness.js';

const TENANT = 'contoso-tenant';
const APP = { tenantId: TENANT, clientId: 'telemetry-app', secret: 'telemetry-client-secret-Qx81' };

/** What must never leave the process in any span, metric or log: addresses, subjects, bodies, secrets. */
const PRIVATE = {
  recipient: 'customer-7731@fabrikam.example',
  subject: 'Invoice 4471 overdue',
  body: 'Please pay the balance of 88.12',
  inboundFrom: 'alerts-991@northwind.example',
  inboundSubject: 'Printer 3F is on fire',
  inboundBody: 'smoke rising from tray 2',
};

/**
 * Issue 10, item 1: what the app exports over OTLP, to a real OTLP/HTTP receiver on loopback that
 * decodes it (protobuf with the specification's messages, or the JSON mapping): a send through
 * Graph that Graph throttles once, a send Graph refuses, and a poll that delivers to a webhook,
 * each with its spans, their nesting and attributes, and the mail.* metrics; nothing private in
 * any byte that arrived.
 */
describe('OpenTelemetry over OTLP/HTTP to a loopback receiver', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  const harness = new ReceiveHarness();
  let mailboxes = 0;

  before(async () => {
    await Promise.all([entra.start(), graph.start(), harness.start()]);
    entra.register({ ...APP });
  });
  after(async () => {
    await Promise.all([graph.stop(), entra.stop(), harness.stop()]);
  });

  async function exercise(protocol: 'http/protobuf' | 'http/json'): Promise<{ receiver: OtlpReceiverPeer; mailbox: string }> {
    const receiver = new OtlpReceiverPeer();
    await receiver.start();
    const mailbox = `helpdesk${++mailboxes}@contoso.com`;
    graph.addMailbox(mailbox);
    const profile = {
      mailbox, tenantId: TENANT, clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'telemetry-client-secret' },
      send: { via: 'graph' },
      receive: { via: 'graph', folder: 'Inbox', afterFetch: 'none', deliver: { webhook: { url: harness.webhook.url, signingSecret: 'hook-signing-key' } } },
      endpoints: { authority: entra.url, graph: graph.url },
    };
    const runtime = harness.runtime({ helpdesk: profile }, {
      TELEMETRY_CLIENT_SECRET: APP.secret,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
      OTEL_SERVICE_NAME: 'mail-under-test',
      OTEL_BSP_SCHEDULE_DELAY: '50',
    });
    try {
      assert.equal(runtime.telemetry.enabled, true);
      // Graph throttles the first sendMail once (Retry-After 1, which the SDK waits out): sent, and one throttled answer.
      graph.inject({ status: 429, code: 'ApplicationThrottled', retryAfter: 1, match: /POST .*\/sendMail$/ });
      await sendMail(runtime, { to: PRIVATE.recipient, subject: PRIVATE.subject, text: PRIVATE.body });
      graph.inject({ status: 403, code: 'ErrorSendAsDenied', message: 'not allowed', match: /POST .*\/sendMail$/ });
      await assert.rejects(sendMail(runtime, { to: PRIVATE.recipient, subject: PRIVATE.subject, text: PRIVATE.body }));
      graph.mail.addMessage(mailbox, 'inbox', await composeEml({ from: PRIVATE.inboundFrom, to: mailbox, subject: PRIVATE.inboundSubject, text: PRIVATE.inboundBody, messageId: `<otel-${mailboxes}@northwind.example>` }), { receivedAt: new Date(Date.now() - 90_000) });
      const polled = await pollMailbox(runtime, 'helpdesk');
      assert.equal(polled.delivered, 1, JSON.stringify(polled));
      runtime.credentialExpiry.record({ profile: 'helpdesk', credential: 'clientSecret', secret: 'telemetry-client-secret', expiresOn: new Date(Date.now() + 12.5 * 86_400_000).toISOString(), daysLeft: 12, source: 'keyVault', state: 'expiring' } as Parameters<typeof runtime.credentialExpiry.record>[0]);
    } finally {
      // The runtime owns this telemetry (its own env): close() flushes and stops its exporters.
      await runtime.close();
      await receiver.stop();
    }
    return { receiver, mailbox };
  }

  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`${protocol}: spans for each send, token request, poll and delivery, nested and attributed`, async () => {
      const { receiver } = await exercise(protocol);
      const wanted = protocol === 'http/json' ? 'application/json' : 'application/x-protobuf';
      assert.deepEqual([...new Set(receiver.exports.map((e) => e.contentType))], [wanted]);
      const named = (name: string) => receiver.spans.filter((s) => s.name === name);
      const sends = named('mail.send');
      assert.equal(sends.length, 2, receiver.spans.map((s) => s.name).join(', '));
      const [sent, refused] = [sends.find((s) => s.attributes['mail.outcome'] === 'sent'), sends.find((s) => s.attributes['mail.outcome'] === 'failed')];
      assert.ok(sent && refused, JSON.stringify(sends.map((s) => s.attributes)));
      for (const s of sends) {
        assert.equal(s.attributes['mail.profile'], 'helpdesk');
        assert.equal(s.attributes['mail.transport'], 'graph');
        assert.equal(typeof s.attributes['mail.duration_ms'], 'number');
        assert.equal(s.resource['service.name'], 'mail-under-test');
      }
      assert.equal(sent.statusCode, 0);
      assert.equal(refused.statusCode, 2);
      assert.equal(refused.attributes['error.type'], 'ESEND_DENIED');

      const tokens = named('mail.token');
      assert.ok(tokens.length >= 1);
      const within = (child: ReceivedSpan, parent: ReceivedSpan) => child.traceId === parent.traceId && child.parentSpanId === parent.spanId;
      assert.ok(tokens.some((t) => within(t, sent)), 'the first send\'s token request is its child');
      assert.deepEqual([tokens[0]!.attributes['mail.auth'], tokens[0]!.attributes['mail.api'], tokens[0]!.attributes['mail.outcome']], ['clientSecret', 'graph', 'issued']);

      const [poll] = named('mail.poll');
      assert.ok(poll);
      assert.deepEqual([poll.attributes['mail.outcome'], poll.attributes['mail.poll.delivered'], poll.attributes['mail.transport']], ['completed', 1, 'graph']);
      const [delivery] = named('mail.deliver');
      assert.ok(delivery && within(delivery, poll), 'the delivery is a child of its poll');
      assert.deepEqual([delivery.attributes['mail.sink'], delivery.attributes['mail.outcome']], ['webhook', 'delivered']);
    });

    it(`${protocol}: mail.* metrics (sent, failures by code, delivered, lag, token requests, throttling, days left)`, async () => {
      const { receiver } = await exercise(protocol);
      const total = (name: string, where: Record<string, unknown> = {}) => receiver.points(name)
        .filter((p) => Object.entries(where).every(([k, v]) => p.attributes[k] === v))
        .reduce((n, p) => Math.max(n, p.value), 0); // cumulative sums: the last export holds the total
      assert.equal(total('mail.sent', { 'mail.profile': 'helpdesk', 'mail.transport': 'graph' }), 1);
      assert.equal(total('mail.send.failures', { 'error.type': 'ESEND_DENIED' }), 1);
      assert.equal(total('mail.delivered', { 'mail.profile': 'helpdesk' }), 1);
      assert.ok(total('mail.token.requests', { 'mail.outcome': 'issued' }) >= 1);
      assert.equal(total('mail.throttled', { 'mail.transport': 'graph', 'mail.status': 429 }), 1);
      const [retryAfter] = receiver.points('mail.throttle.retry_after');
      assert.deepEqual([retryAfter?.value, retryAfter?.sum], [1, 1]);
      const [lag] = receiver.points('mail.poll.lag');
      assert.equal(lag?.value, 1, 'one delivered message');
      assert.ok((lag?.sum ?? 0) >= 90, `lag ${lag?.sum} s: the message arrived 90 s before the poll`);
      const days = receiver.points('mail.credential.days_left');
      assert.deepEqual(days.at(-1), { attributes: { 'mail.profile': 'helpdesk', 'mail.credential': 'clientSecret' }, value: 12 });
      const units = Object.fromEntries(receiver.metrics.map((m) => [m.name, m.unit]));
      assert.deepEqual([units['mail.poll.lag'], units['mail.credential.days_left']], ['s', 'd']);
    });

    it(`${protocol}: no address, subject, body, token or secret in anything exported`, async () => {
      const { receiver, mailbox } = await exercise(protocol);
      const text = receiver.rawText();
      assert.ok(text.includes('mail.send'), 'the check reads what arrived');
      const secrets = [APP.secret, HOOK_SECRET, 'hook-signing-key', ...entra.issued.keys()];
      for (const value of [...Object.values(PRIVATE), mailbox, ...secrets]) {
        assert.equal(text.includes(value), false, `"${value.slice(0, 12)}..." left the process in telemetry`);
      }
      for (const span of receiver.spans) {
        for (const value of Object.values(span.attributes)) assert.doesNotMatch(String(value), /@/, `${span.name} carries an address`);
      }
    });
  }

  it('OTEL_TRACES_EXPORTER=none exports metrics only; a signal endpoint is used as it is', async () => {
    const receiver = new OtlpReceiverPeer();
    await receiver.start();
    const runtime = new MailRuntime({ env: { MAIL_DIR: harness.folder('otel-none'), OTEL_TRACES_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none', OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${receiver.url}/v1/metrics` } });
    try {
      await sendMail(runtime, { to: PRIVATE.recipient, subject: 's', text: 't' });
    } finally {
      await runtime.close();
      await receiver.stop();
    }
    assert.deepEqual([...new Set(receiver.exports.map((e) => e.signal))], ['metrics']);
    assert.deepEqual(receiver.points('mail.sent').map((p) => [p.attributes['mail.transport'], p.value]), [['file', 1]]);
  });
});
