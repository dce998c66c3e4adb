import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type * as Protobuf from 'protobufjs';

/**
 * The messages of OTLP/HTTP that this receiver decodes, from opentelemetry-proto v1
 * (opentelemetry/proto/{common,resource,trace,metrics,logs}/v1/*.proto and the collector's
 * Export*ServiceRequest), with the fields' numbers as the specification gives them. Fields a
 * test does not read are left out; protobuf skips what a schema does not name.
 */
const OTLP_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; KeyValueList kvlist_value = 6; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValueList { repeated KeyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message InstrumentationScope { string name = 1; string version = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Status { string message = 2; int32 code = 3; }
message Span { bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; Status status = 15; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message NumberDataPoint { fixed64 time_unix_nano = 3; double as_double = 4; sfixed64 as_int = 6; repeated KeyValue attributes = 7; }
message HistogramDataPoint { fixed64 count = 4; double sum = 5; repeated KeyValue attributes = 9; }
message Gauge { repeated NumberDataPoint data_points = 1; }
message Sum { repeated NumberDataPoint data_points = 1; int32 aggregation_temporality = 2; bool is_monotonic = 3; }
message Histogram { repeated HistogramDataPoint data_points = 1; int32 aggregation_temporality = 2; }
message Metric { string name = 1; string description = 2; string unit = 3; Gauge gauge = 5; Sum sum = 7; Histogram histogram = 9; }
message ScopeMetrics { InstrumentationScope scope = 1; repeated Metric metrics = 2; }
message ResourceMetrics { Resource resource = 1; repeated ScopeMetrics scope_metrics = 2; }
message ExportMetricsServiceRequest { repeated ResourceMetrics resource_metrics = 1; }
message LogRecord { fixed64 time_unix_nano = 1; int32 severity_number = 2; string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6; bytes trace_id = 9; bytes span_id = 10; }
message ScopeLogs { InstrumentationScope scope = 1; repeated LogRecord log_records = 2; }
message ResourceLogs { Resource resource = 1; repeated ScopeLogs scope_logs = 2; }
message ExportLogsServiceRequest { repeated ResourceLogs resource_logs = 1; }
`;

export type AttributeValue = string | number | boolean;

export interface ReceivedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  kind: number;
  attributes: Record<string, AttributeValue>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, AttributeValue>;
}

export interface ReceivedPoint {
  attributes: Record<string, AttributeValue>;
  /** A sum's or gauge's value; a histogram's count. */
  value: number;
  /** A histogram's sum. */
  sum?: number;
}

export interface ReceivedMetric {
  name: string;
  unit: string;
  kind: 'sum' | 'gauge' | 'histogram';
  points: ReceivedPoint[];
}

export interface ReceivedExport {
  signal: 'traces' | 'metrics' | 'logs';
  contentType: string;
  /** The body as it came (gunzipped): what the PII check searches, whatever the encoding. */
  raw: Buffer;
}

/**
 * An OpenTelemetry collector's OTLP/HTTP receiver on 127.0.0.1: POST /v1/traces, /v1/metrics and
 * /v1/logs in http/protobuf (decoded with protobufjs against the specification's messages) or
 * http/json (the specification's JSON mapping: hex ids, camelCase or snake_case fields, int64 as
 * strings or numbers). It answers 200 with an empty Export*ServiceResponse, as a collector does,
 * and keeps what it decoded.
 */
export class OtlpReceiverPeer {
  readonly exports: ReceivedExport[] = [];
  readonly spans: ReceivedSpan[] = [];
  readonly metrics: ReceivedMetric[] = [];
  readonly logs: Array<{ body: string; severity: string; traceId: string }> = [];
  private server?: Server;
  private port = 0;
  private root?: Protobuf.Root;

  /** The base endpoint, as OTEL_EXPORTER_OTLP_ENDPOINT names it. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const protobuf = require('protobufjs') as typeof Protobuf;
    this.root = protobuf.parse(OTLP_PROTO, { keepCase: false }).root;
    this.server = createServer((req, res) => {
      void this.handle(req).then(
        (status) => {
          res.writeHead(status, { 'Content-Type': req.headers['content-type'] === 'application/json' ? 'application/json' : 'application/x-protobuf' });
          res.end(status === 200 && req.headers['content-type'] === 'application/json' ? '{}' : undefined);
        },
        (error: Error) => {
          res.writeHead(400, { 'Content-Type': 'text/plain' });
          res.end(error.message);
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** The data points of a metric, across every export of it. */
  points(name: string): ReceivedPoint[] {
    return this.metrics.filter((m) => m.name === name).flatMap((m) => m.points);
  }

  /** Every decoded body as text (protobuf strings are UTF-8 inside the bytes): for "this never left the process". */
  rawText(): string {
    return this.exports.map((e) => e.raw.toString('utf8')).join('\n');
  }

  private async handle(req: IncomingMessage): Promise<number> {
    const signal = ({ '/v1/traces': 'traces', '/v1/metrics': 'metrics', '/v1/logs': 'logs' } as const)[req.url ?? ''];
    if (req.method !== 'POST' || signal === undefined) return 404;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let raw = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
    const contentType = req.headers['content-type'] ?? '';
    this.exports.push({ signal, contentType, raw });
    const json = contentType === 'application/json';
    if (!json && contentType !== 'application/x-protobuf') return 415;
    const request = json ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : this.decode(signal, raw);
    if (signal === 'traces') this.takeSpans(request, json);
    else if (signal === 'metrics') this.takeMetrics(request);
    else this.takeLogs(request, json);
    return 200;
  }

  private decode(signal: 'traces' | 'metrics' | 'logs', raw: Buffer): Record<string, unknown> {
    const type = this.root!.lookupType({ traces: 'otlp.ExportTraceServiceRequest', metrics: 'otlp.ExportMetricsServiceRequest', logs: 'otlp.ExportLogsServiceRequest' }[signal]);
    // bytes as hex (what the JSON mapping uses for ids), int64 as numbers.
    return type.toObject(type.decode(raw), { longs: Number, bytes: String, defaults: false }) as Record<string, unknown>;
  }

  private takeSpans(request: Record<string, unknown>, json: boolean): void {
    for (const rs of list(field(request, 'resourceSpans'))) {
      const resource = attributes(field(field(rs, 'resource'), 'attributes'));
      for (const ss of list(field(rs, 'scopeSpans'))) {
        for (const span of list(field(ss, 'spans'))) {
          this.spans.push({
            name: String(field(span, 'name')),
            traceId: id(field(span, 'traceId'), json),
            spanId: id(field(span, 'spanId'), json),
            parentSpanId: id(field(span, 'parentSpanId'), json),
            kind: Number(field(span, 'kind') ?? 0),
            attributes: attributes(field(span, 'attributes')),
            statusCode: Number(field(field(span, 'status'), 'code') ?? 0),
            resource,
          });
        }
      }
    }
  }

  private takeMetrics(request: Record<string, unknown>): void {
    for (const rm of list(field(request, 'resourceMetrics'))) {
      for (const sm of list(field(rm, 'scopeMetrics'))) {
        for (const metric of list(field(sm, 'metrics'))) {
          const kind = field(metric, 'sum') !== undefined ? 'sum' : field(metric, 'gauge') !== undefined ? 'gauge' : 'histogram';
          const points = list(field(field(metric, kind), 'dataPoints')).map((p): ReceivedPoint => kind === 'histogram'
            ? { attributes: attributes(field(p, 'attributes')), value: Number(field(p, 'count') ?? 0), sum: Number(field(p, 'sum') ?? 0) }
            : { attributes: attributes(field(p, 'attributes')), value: Number(field(p, 'asDouble') ?? field(p, 'asInt') ?? 0) });
          this.metrics.push({ name: String(field(metric, 'name')), unit: String(field(metric, 'unit') ?? ''), kind, points });
        }
      }
    }
  }

  private takeLogs(request: Record<string, unknown>, json: boolean): void {
    for (const rl of list(field(request, 'resourceLogs'))) {
      for (const sl of list(field(rl, 'scopeLogs'))) {
        for (const record of list(field(sl, 'logRecords'))) {
          this.logs.push({ body: String(anyValue(field(record, 'body')) ?? ''), severity: String(field(record, 'severityText') ?? ''), traceId: id(field(record, 'traceId'), json) });
        }
      }
    }
  }
}

/** A field by its camelCase name or the snake_case one the JSON mapping also allows. */
function field(value: unknown, name: string): unknown {
  if (value === null || typeof value !== 'object') return undefined;
  const record = value as Record<string, unknown>;
  return record[name] ?? record[name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)];
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Ids: hex in JSON; protobufjs gives bytes as base64, turned to hex here. */
function id(value: unknown, json: boolean): string {
  if (typeof value !== 'string' || value === '') return '';
  return json ? value.toLowerCase() : Buffer.from(value, 'base64').toString('hex');
}

function anyValue(value: unknown): AttributeValue | undefined {
  for (const key of ['stringValue', 'boolValue', 'intValue', 'doubleValue']) {
    const v = field(value, key);
    if (v !== undefined) return key === 'intValue' || key === 'doubleValue' ? Number(v) : (v as AttributeValue);
  }
  return undefined;
}

function attributes(value: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const kv of list(value)) {
    const v = anyValue(field(kv, 'value'));
    if (v !== undefined) out[String(field(kv, 'key'))] = v;
  }
  return out;
}
