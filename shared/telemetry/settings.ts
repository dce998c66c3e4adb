import { MailError } from '../errors.js';
import { stripEnds } from '../text.js';

/**
 * The telemetry settings, read from the standard variables of the OpenTelemetry specification
 * (https://opentelemetry.io/docs/specs/otel/protocol/exporter/ and
 * https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/) and from
 * Application Insights' own. Read from the runtime's env, not process.env, so a test or the CLI
 * with its own env exports where that env says.
 */
export interface TelemetrySettings {
  serviceName: string;
  /** OTEL_RESOURCE_ATTRIBUTES, decoded. */
  resourceAttributes: Record<string, string>;
  /** Per signal, where OTLP goes; absent: that signal is not exported over OTLP. */
  otlp: Partial<Record<Signal, OtlpTarget>>;
  azureMonitor?: AzureMonitorTarget;
  /** OTEL_METRIC_EXPORT_INTERVAL, ms. @default 60000 */
  metricExportIntervalMs: number;
  /** OTEL_BSP_SCHEDULE_DELAY (spans) and OTEL_BLRP_SCHEDULE_DELAY (logs), ms. @default 5000 and 1000 */
  spanScheduleDelayMs: number;
  logScheduleDelayMs: number;
}

export type Signal = 'traces' | 'metrics' | 'logs';
export const SIGNALS: readonly Signal[] = ['traces', 'metrics', 'logs'];

export interface OtlpTarget {
  url: string;
  protocol: 'http/protobuf' | 'http/json';
  headers: Record<string, string>;
  timeoutMs: number;
}

export interface AzureMonitorTarget {
  connectionString: string;
  /** APPLICATIONINSIGHTS_AUTHENTICATION_STRING "Authorization=AAD": Entra authentication, with the user-assigned identity's ClientId when it names one (local auth is off in infra/). */
  entra?: { clientId?: string };
}

export const DEFAULT_SERVICE_NAME = 'm365-mail-functions';

/** The settings, or undefined when nothing is to be exported (then no SDK is loaded). */
export function telemetrySettings(env: NodeJS.ProcessEnv): TelemetrySettings | undefined {
  if (text(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return undefined;
  const otlp: Partial<Record<Signal, OtlpTarget>> = {};
  for (const signal of SIGNALS) {
    const target = otlpTarget(env, signal);
    if (target) otlp[signal] = target;
  }
  const azureMonitor = azureMonitorTarget(env);
  if (Object.keys(otlp).length === 0 && azureMonitor === undefined) return undefined;
  return {
    serviceName: text(env, 'OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME,
    resourceAttributes: keyValueList(env, 'OTEL_RESOURCE_ATTRIBUTES'),
    otlp,
    ...(azureMonitor && { azureMonitor }),
    metricExportIntervalMs: milliseconds(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000),
    spanScheduleDelayMs: milliseconds(env, 'OTEL_BSP_SCHEDULE_DELAY', 5_000),
    logScheduleDelayMs: milliseconds(env, 'OTEL_BLRP_SCHEDULE_DELAY', 1_000),
  };
}

/** Values that are credentials (an OTLP header may be an API key; the connection string holds the ingestion key): the runtime keeps them out of every log line. */
export function telemetrySecrets(settings: TelemetrySettings | undefined): string[] {
  if (!settings) return [];
  const headers = Object.values(settings.otlp).flatMap((t) => Object.values(t.headers));
  return [...headers, ...(settings.azureMonitor ? [settings.azureMonitor.connectionString] : [])];
}

const SIGNAL_PATH: Record<Signal, string> = { traces: 'v1/traces', metrics: 'v1/metrics', logs: 'v1/logs' };

function otlpTarget(env: NodeJS.ProcessEnv, signal: Signal): OtlpTarget | undefined {
  const upper = signal.toUpperCase();
  const exporterSetting = `OTEL_${upper}_EXPORTER`;
  const exporter = text(env, exporterSetting)?.toLowerCase() ?? 'otlp';
  if (exporter === 'none') return undefined;
  if (exporter !== 'otlp') {
    throw new MailError('ECONFIG', `${exporterSetting} must be otlp or none, not "${env[exporterSetting]}"`, {
      field: exporterSetting,
      hint: 'This app exports over OTLP (and to Azure Monitor with APPLICATIONINSIGHTS_CONNECTION_STRING); set otlp, none, or remove the setting.',
    });
  }
  const signalEndpointSetting = `OTEL_EXPORTER_OTLP_${upper}_ENDPOINT`;
  const signalEndpoint = text(env, signalEndpointSetting);
  const base = text(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  // The specification: a signal's own endpoint is used as it is; the base one gets v1/<signal> appended.
  const url = signalEndpoint ?? (base === undefined ? undefined : `${stripEnds(base, '/', 'end')}/${SIGNAL_PATH[signal]}`);
  if (url === undefined) return undefined;
  const urlField = signalEndpoint !== undefined ? signalEndpointSetting : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw new MailError('ECONFIG', `${urlField} must be an http or https URL, not "${signalEndpoint ?? base}"`, {
      field: urlField,
      hint: 'Set it to the OTLP/HTTP endpoint of your collector, such as http://localhost:4318 (the base; the app appends /v1/traces, /v1/metrics and /v1/logs).',
    });
  }
  const protocolSetting = text(env, `OTEL_EXPORTER_OTLP_${upper}_PROTOCOL`) !== undefined ? `OTEL_EXPORTER_OTLP_${upper}_PROTOCOL` : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = text(env, protocolSetting) ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') {
    throw new MailError('ECONFIG', `${protocolSetting} must be http/protobuf or http/json, not "${protocol}"`, {
      field: protocolSetting,
      hint: 'This app exports OTLP over HTTP (http/protobuf, the default, or http/json); gRPC is not supported: point it at the collector\'s HTTP port (4318).',
    });
  }
  return {
    url,
    protocol,
    headers: { ...keyValueList(env, 'OTEL_EXPORTER_OTLP_HEADERS'), ...keyValueList(env, `OTEL_EXPORTER_OTLP_${upper}_HEADERS`) },
    timeoutMs: milliseconds(env, `OTEL_EXPORTER_OTLP_${upper}_TIMEOUT`, milliseconds(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10_000)),
  };
}

function azureMonitorTarget(env: NodeJS.ProcessEnv): AzureMonitorTarget | undefined {
  const connectionString = text(env, 'APPLICATIONINSIGHTS_CONNECTION_STRING');
  if (connectionString === undefined) return undefined;
  if (!/(?:^|;)\s*(InstrumentationKey|IngestionEndpoint)\s*=/i.test(connectionString)) {
    throw new MailError('ECONFIG', 'APPLICATIONINSIGHTS_CONNECTION_STRING is not an Application Insights connection string', {
      field: 'APPLICATIONINSIGHTS_CONNECTION_STRING',
      hint: 'Copy the connection string from the Application Insights resource (Overview), "InstrumentationKey=...;IngestionEndpoint=...".',
    });
  }
  const auth = parts(text(env, 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING') ?? '');
  const entra = auth.get('authorization')?.toUpperCase() === 'AAD';
  const clientId = auth.get('clientid');
  return { connectionString, ...(entra && { entra: clientId !== undefined ? { clientId } : {} }) };
}

/** "a=1;b=2" as the connection and authentication strings write it, keys lower-cased. */
function parts(value: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const part of value.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) map.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  return map;
}

/** The specification's "key1=value1,key2=value2" lists (headers, resource attributes), values percent-decoded. */
function keyValueList(env: NodeJS.ProcessEnv, name: string): Record<string, string> {
  const raw = text(env, name);
  const out: Record<string, string> = {};
  if (raw === undefined) return out;
  for (const item of raw.split(',')) {
    if (item.trim() === '') continue;
    const at = item.indexOf('=');
    const key = at > 0 ? item.slice(0, at).trim() : '';
    if (key === '') {
      throw new MailError('ECONFIG', `${name} must be a list of key=value pairs separated by commas`, { field: name, hint: `Write ${name} as key1=value1,key2=value2 (values percent-encoded).` });
    }
    let value = item.slice(at + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      throw new MailError('ECONFIG', `${name}: the value of "${key}" is not valid percent-encoding`, { field: name, hint: 'Percent-encode commas, equals signs and non-ASCII characters in the values.' });
    }
    out[key] = value;
  }
  return out;
}

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new MailError('ECONFIG', `${name} must be a whole number of milliseconds above 0, not "${raw}"`, { field: name, hint: `Fix or remove ${name} (default ${fallback}).` });
  }
  return value;
}

function text(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}
