import type { Attributes as OtelAttributes, Counter, Histogram, Meter, Tracer } from '@opentelemetry/api';
import type { LoggerProvider } from '@opentelemetry/sdk-logs';
import type { MeterProvider } from '@opentelemetry/sdk-metrics';
import type { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import { isMailError } from '../errors.js';
import { METRICS, type Attributes, type CounterName, type GaugeName, type GaugeReading, type HistogramName, type SpanHandle, type SpanName, type Telemetry } from './names.js';
import type { TelemetrySettings } from './settings.js';

/** The instrumentation scope of every span and metric. */
export const SCOPE_NAME = 'm365-mail-functions';

let contextRegistered = false;

/**
 * The OpenTelemetry SDK for one runtime: a tracer, meter and logger provider of its own (not the
 * global ones, so two runtimes in one process, as in the tests, export where each was told), with
 * the OTLP exporters (http/protobuf or http/json) and/or the Azure Monitor ones. The context
 * manager (AsyncLocalStorage) and the W3C propagator are process-wide, registered once: spans nest
 * across awaits, and the Functions host's traceparent becomes the parent of an invocation's spans.
 */
export class OpenTelemetry implements Telemetry {
  readonly enabled = true;
  readonly tracerProvider: BasicTracerProvider;
  readonly meterProvider: MeterProvider;
  readonly loggerProvider: LoggerProvider;
  private readonly tracer: Tracer;
  private readonly meter: Meter;
  private readonly counters = new Map<CounterName, Counter>();
  private readonly histograms = new Map<HistogramName, Histogram>();
  private stopped?: Promise<void>;

  constructor(settings: TelemetrySettings) {
    const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
    const { resourceFromAttributes } = require('@opentelemetry/resources') as typeof import('@opentelemetry/resources');
    const traceSdk = require('@opentelemetry/sdk-trace-base') as typeof import('@opentelemetry/sdk-trace-base');
    const metricsSdk = require('@opentelemetry/sdk-metrics') as typeof import('@opentelemetry/sdk-metrics');
    const logsSdk = require('@opentelemetry/sdk-logs') as typeof import('@opentelemetry/sdk-logs');
    registerContext(api);

    const resource = resourceFromAttributes({ ...settings.resourceAttributes, 'service.name': settings.serviceName });
    const exporters = createExporters(settings);
    this.tracerProvider = new traceSdk.BasicTracerProvider({
      resource,
      spanProcessors: exporters.traces.map((e) => new traceSdk.BatchSpanProcessor(e, { scheduledDelayMillis: settings.spanScheduleDelayMs })),
    });
    this.meterProvider = new metricsSdk.MeterProvider({
      resource,
      readers: exporters.metrics.map((e) => new metricsSdk.PeriodicExportingMetricReader({ exporter: e, exportIntervalMillis: settings.metricExportIntervalMs, exportTimeoutMillis: Math.min(30_000, settings.metricExportIntervalMs) })),
    });
    this.loggerProvider = new logsSdk.LoggerProvider({
      resource,
      processors: exporters.logs.map((e) => new logsSdk.BatchLogRecordProcessor({ exporter: e, scheduledDelayMillis: settings.logScheduleDelayMs })),
    });
    this.tracer = this.tracerProvider.getTracer(SCOPE_NAME);
    this.meter = this.meterProvider.getMeter(SCOPE_NAME);
  }

  async span<T>(name: SpanName, attributes: Attributes, run: (span: SpanHandle) => Promise<T>): Promise<T> {
    const api = require('@opentelemetry/api') as typeof import('@opentelemetry/api');
    const kind = name === 'mail.token' || name === 'mail.deliver' ? api.SpanKind.CLIENT : api.SpanKind.INTERNAL;
    return this.tracer.startActiveSpan(name, { kind, attributes: clean(attributes) }, async (span) => {
      const started = performance.now();
      const handle: SpanHandle = {
        set: (more) => {
          span.setAttributes(clean(more));
          // An outcome that is a failure without an exception (a poll answers failed, a sink refused).
          if (more['error.type'] !== undefined) span.setStatus({ code: api.SpanStatusCode.ERROR, message: more['error.type'] });
        },
      };
      try {
        return await run(handle);
      } catch (error) {
        // The code only: a message may name an address or a subject.
        const code = isMailError(error) ? error.code : 'EINTERNAL';
        span.setAttributes({ 'error.type': code, 'mail.outcome': 'failed' });
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: code });
        throw error;
      } finally {
        span.setAttribute('mail.duration_ms', Math.round(performance.now() - started));
        span.end();
      }
    });
  }

  count(metric: CounterName, attributes: Attributes, value = 1): void {
    let counter = this.counters.get(metric);
    if (!counter) {
      counter = this.meter.createCounter(metric, { unit: METRICS[metric].unit, description: METRICS[metric].description });
      this.counters.set(metric, counter);
    }
    counter.add(value, clean(attributes));
  }

  record(metric: HistogramName, value: number, attributes: Attributes): void {
    let histogram = this.histograms.get(metric);
    if (!histogram) {
      histogram = this.meter.createHistogram(metric, { unit: METRICS[metric].unit, description: METRICS[metric].description });
      this.histograms.set(metric, histogram);
    }
    histogram.record(value, clean(attributes));
  }

  observe(metric: GaugeName, read: () => GaugeReading[]): void {
    const gauge = this.meter.createObservableGauge(metric, { unit: METRICS[metric].unit, description: METRICS[metric].description });
    gauge.addCallback((result) => {
      for (const reading of read()) result.observe(reading.value, clean(reading.attributes));
    });
  }

  async flush(): Promise<void> {
    await Promise.all([this.tracerProvider.forceFlush(), this.meterProvider.forceFlush(), this.loggerProvider.forceFlush()]);
  }

  shutdown(): Promise<void> {
    this.stopped ??= Promise.all([this.tracerProvider.shutdown(), this.meterProvider.shutdown(), this.loggerProvider.shutdown()]).then(() => undefined);
    return this.stopped;
  }
}

function registerContext(api: typeof import('@opentelemetry/api')): void {
  if (contextRegistered) return;
  contextRegistered = true;
  const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks') as typeof import('@opentelemetry/context-async-hooks');
  const { W3CTraceContextPropagator } = require('@opentelemetry/core') as typeof import('@opentelemetry/core');
  api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  api.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
}

type SpanExporter = import('@opentelemetry/sdk-trace-base').SpanExporter;
type PushMetricExporter = import('@opentelemetry/sdk-metrics').PushMetricExporter;
type LogRecordExporter = import('@opentelemetry/sdk-logs').LogRecordExporter;

/** Per signal, the exporters the settings name: OTLP in the chosen encoding, Azure Monitor (with Entra authentication when asked). */
function createExporters(settings: TelemetrySettings): { traces: SpanExporter[]; metrics: PushMetricExporter[]; logs: LogRecordExporter[] } {
  const out: { traces: SpanExporter[]; metrics: PushMetricExporter[]; logs: LogRecordExporter[] } = { traces: [], metrics: [], logs: [] };
  const { traces, metrics, logs } = settings.otlp;
  const config = (t: { url: string; headers: Record<string, string>; timeoutMs: number }) => ({ url: t.url, headers: t.headers, timeoutMillis: t.timeoutMs });
  if (traces) {
    const { OTLPTraceExporter } = traces.protocol === 'http/json'
      ? (require('@opentelemetry/exporter-trace-otlp-http') as typeof import('@opentelemetry/exporter-trace-otlp-http'))
      : (require('@opentelemetry/exporter-trace-otlp-proto') as typeof import('@opentelemetry/exporter-trace-otlp-proto'));
    out.traces.push(new OTLPTraceExporter(config(traces)));
  }
  if (metrics) {
    const { OTLPMetricExporter } = metrics.protocol === 'http/json'
      ? (require('@opentelemetry/exporter-metrics-otlp-http') as typeof import('@opentelemetry/exporter-metrics-otlp-http'))
      : (require('@opentelemetry/exporter-metrics-otlp-proto') as typeof import('@opentelemetry/exporter-metrics-otlp-proto'));
    out.metrics.push(new OTLPMetricExporter(config(metrics)));
  }
  if (logs) {
    const { OTLPLogExporter } = logs.protocol === 'http/json'
      ? (require('@opentelemetry/exporter-logs-otlp-http') as typeof import('@opentelemetry/exporter-logs-otlp-http'))
      : (require('@opentelemetry/exporter-logs-otlp-proto') as typeof import('@opentelemetry/exporter-logs-otlp-proto'));
    out.logs.push(new OTLPLogExporter(config(logs)));
  }
  const monitor = settings.azureMonitor;
  if (monitor) {
    const azure = require('@azure/monitor-opentelemetry-exporter') as typeof import('@azure/monitor-opentelemetry-exporter');
    const options = { connectionString: monitor.connectionString, ...(monitor.entra && { credential: entraCredential(monitor.entra.clientId) }) };
    out.traces.push(new azure.AzureMonitorTraceExporter(options));
    out.metrics.push(new azure.AzureMonitorMetricExporter(options));
    out.logs.push(new azure.AzureMonitorLogExporter(options));
  }
  return out;
}

/** Application Insights with local authentication off takes Entra tokens: the app's managed identity's (Monitoring Metrics Publisher on the component, infra/app/rbac.bicep). */
function entraCredential(clientId: string | undefined): import('@azure/identity').TokenCredential {
  const { ManagedIdentityCredential } = require('@azure/identity') as typeof import('@azure/identity');
  return clientId !== undefined ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

/** Drops unset attributes (OpenTelemetry refuses undefined values). */
function clean(attributes: Attributes): OtelAttributes {
  const out: OtelAttributes = {};
  for (const [key, value] of Object.entries(attributes)) if (value !== undefined) out[key] = value;
  return out;
}
