import { telemetrySettings, type TelemetrySettings } from './settings.js';
import type { SpanHandle, Telemetry } from './names.js';

export * from './names.js';

/** The facade: a no-op unless an exporter is configured (names.ts says what it may carry). */

const noop: SpanHandle = { set: () => {} };

/** What every call does when no exporter is configured: nothing, and nothing loaded. */
export const NO_TELEMETRY: Telemetry = {
  enabled: false,
  span: (_name, _attributes, run) => run(noop),
  count: () => {},
  record: () => {},
  observe: () => {},
  flush: async () => {},
  shutdown: async () => {},
};

/**
 * The telemetry these settings ask for: NO_TELEMETRY when no exporter is configured (or
 * OTEL_SDK_DISABLED=true), else the OpenTelemetry SDK with the OTLP and/or Azure Monitor
 * exporters. An invalid setting is ECONFIG naming it, at start-up.
 */
export function createTelemetry(env: NodeJS.ProcessEnv): Telemetry {
  const settings = telemetrySettings(env);
  return settings ? startOpenTelemetry(settings) : NO_TELEMETRY;
}

function startOpenTelemetry(settings: TelemetrySettings): Telemetry {
  // Loaded here only: without an exporter, no OpenTelemetry module is ever required.
  const { OpenTelemetry } = require('./otel.js') as typeof import('./otel.js');
  return new OpenTelemetry(settings);
}

/** On globalThis, like the redaction list: the registrations' file and the app's (scripts/bundle.js) share one telemetry. */
const PROCESS_WIDE = Symbol.for('m365-mail.telemetry');

/**
 * The process's telemetry, from process.env, made once: the Functions host integration
 * (functions/appStart.ts) and the process-wide runtime share it, so the invocation's trace context
 * and the app's spans meet in one tracer provider.
 */
export function processTelemetry(): Telemetry {
  const holder = globalThis as Record<symbol, Telemetry | undefined>;
  holder[PROCESS_WIDE] ??= createTelemetry(process.env);
  return holder[PROCESS_WIDE];
}

export type { TelemetrySettings } from './settings.js';
