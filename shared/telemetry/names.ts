/**
 * Traces and metrics of the app's own work, through OpenTelemetry when an exporter is configured
 * (OTEL_EXPORTER_OTLP_*, APPLICATIONINSIGHTS_CONNECTION_STRING), and nothing at all otherwise: the
 * SDK is loaded only then (shared/telemetry/otel.ts), so a cold start without telemetry pays
 * nothing for it.
 *
 * The names and shapes of the telemetry. Attributes are a closed set (`Attributes`): profile and transport names, outcomes, error
 * codes, counts and durations. No address, subject, body, token, secret or URL is ever one: the
 * type does not let a caller add one.
 */
export const SPAN_NAMES = ['mail.send', 'mail.poll', 'mail.deliver', 'mail.token'] as const;
export type SpanName = (typeof SPAN_NAMES)[number];

/** Every metric, its kind, unit and description: what docs/telemetry.md lists. */
export const METRICS = {
  'mail.sent': { kind: 'counter', unit: '{message}', description: 'Messages the provider accepted' },
  'mail.send.failures': { kind: 'counter', unit: '{message}', description: 'Send attempts that failed, by error code (error.type)' },
  'mail.delivered': { kind: 'counter', unit: '{message}', description: 'Received messages the sink acknowledged' },
  'mail.dead_lettered': { kind: 'counter', unit: '{message}', description: 'Received messages kept in the dead-letter container instead of being delivered' },
  'mail.duplicates': { kind: 'counter', unit: '{message}', description: 'Received messages skipped because they were delivered before' },
  'mail.poll.lag': { kind: 'histogram', unit: 's', description: 'From a message\'s arrival in the mailbox to its delivery to the sink' },
  'mail.token.requests': { kind: 'counter', unit: '{request}', description: 'Access token requests to the identity platform (cache hits are not counted), by outcome' },
  'mail.throttled': { kind: 'counter', unit: '{response}', description: 'Throttled answers from the mail provider (Graph 429, or 503 with Retry-After; SMTP 4.x.x throttling)' },
  'mail.throttle.retry_after': { kind: 'histogram', unit: 's', description: 'The Retry-After of throttled answers that carried one' },
  'mail.credential.days_left': { kind: 'gauge', unit: 'd', description: 'Days until a profile\'s client secret or certificate expires (negative once expired)' },
  'mail.governor.waits': { kind: 'histogram', unit: 's', description: 'How long the governor held a Graph request for a concurrency slot, or a send for its place in the mailbox\'s send rate (mail.governor.limit)' },
  'mail.governor.deferred': { kind: 'counter', unit: '{request}', description: 'Sends and Graph requests the governor held back instead of letting them meet a 429: queued for later, or answered 429 (mail.governor.limit)' },
  'mail.governor.budget_left': { kind: 'gauge', unit: '{request}', description: 'Graph requests left in the sliding 10 minutes of a profile\'s app and mailbox, as this instance last saw it' },
  'mail.notifications': { kind: 'counter', unit: '{notification}', description: 'Graph change and lifecycle notifications accepted (known subscription, matching clientState), by mail.notification' },
  'mail.notifications.ignored': { kind: 'counter', unit: '{notification}', description: 'Notifications passed over, by mail.reason: unknownSubscription, clientState, unknownEvent, malformed' },
} as const;
export type MetricName = keyof typeof METRICS;
type MetricOfKind<K extends string> = { [M in MetricName]: (typeof METRICS)[M]['kind'] extends K ? M : never }[MetricName];
export type CounterName = MetricOfKind<'counter'>;
export type HistogramName = MetricOfKind<'histogram'>;
export type GaugeName = MetricOfKind<'gauge'>;

/**
 * The attributes spans and metrics may carry. `error.type` is the semantic conventions' name for
 * the error class: ours are the stable codes (ETOKEN, ETHROTTLED, ...), never a message.
 */
export interface Attributes {
  'mail.profile'?: string;
  /** graph, smtp, imap, pop3, file. */
  'mail.transport'?: string;
  /** sent, queued, failed, completed, delivered, issued, refused, ... */
  'mail.outcome'?: string;
  'error.type'?: string;
  /** sync or queued, for a send. */
  'mail.send.mode'?: string;
  /** webhook or queue, for a delivery. */
  'mail.sink'?: string;
  /** The auth type of a token request: clientSecret, certificate, managedIdentity, federated, delegated. */
  'mail.auth'?: string;
  /** The API a token is for: graph or exchange. */
  'mail.api'?: string;
  /** clientSecret or certificate, for the days-left gauge. */
  'mail.credential'?: string;
  /** HTTP status or SMTP reply code of a throttled answer. */
  'mail.status'?: number;
  'mail.attempt'?: number;
  /** Which governor limit held a request or send back: concurrency, budget, send_rate, recipients_per_day. */
  'mail.governor.limit'?: string;
  /** A poll's counts, on its span. */
  'mail.poll.delivered'?: number;
  'mail.poll.dead_lettered'?: number;
  'mail.poll.duplicates'?: number;
  'mail.poll.filtered'?: number;
  /** What a notification said: its changeType (created) or lifecycleEvent (reauthorizationRequired, subscriptionRemoved, missed). */
  'mail.notification'?: string;
  /** Why a notification was ignored. */
  'mail.reason'?: string;
}

export interface SpanHandle {
  /** Adds attributes (an outcome, counts) before the span ends; an `error.type` marks the span failed. */
  set(attributes: Attributes): void;
}

export interface GaugeReading {
  value: number;
  attributes: Attributes;
}

export interface Telemetry {
  /** Whether anything is exported; false: every call below does nothing. */
  readonly enabled: boolean;
  /**
   * Runs `run` inside a span (a child of the active one: a send's token request nests under the
   * send, an invocation's spans under the host's). The span ends with `mail.duration_ms` and, when
   * `run` throws, status error and `error.type` the MailError code; the error is rethrown.
   */
  span<T>(name: SpanName, attributes: Attributes, run: (span: SpanHandle) => Promise<T>): Promise<T>;
  count(metric: CounterName, attributes: Attributes, value?: number): void;
  record(metric: HistogramName, value: number, attributes: Attributes): void;
  /** A gauge read at each export. */
  observe(metric: GaugeName, read: () => GaugeReading[]): void;
  /** Exports what is buffered (the end of a CLI run, a test). */
  flush(): Promise<void>;
  /** Flushes and stops the exporters. */
  shutdown(): Promise<void>;
}

