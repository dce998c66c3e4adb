import type * as AzureFunctions from '@azure/functions';
import type { Logger } from '../log.js';
import { asMailError } from '../errors.js';
import { processTelemetry } from './index.js';

/**
 * Joins the app's telemetry to the Functions host's, as Azure documents for OpenTelemetry
 * (host.json `"telemetryMode": "OpenTelemetry"`, and Microsoft's
 * @azure/functions-opentelemetry-instrumentation in the worker): each invocation runs in the
 * host's trace context (its traceparent becomes the parent of our spans), and the worker's logs
 * go out through the same exporters (the instrumentation tells the host the worker sends them).
 *
 * Called once, while the app's modules load (the host locks `app.setup` after). Without an
 * exporter it loads nothing and changes nothing: the host then forwards the logs itself.
 */
export function instrumentFunctionsHost(azureFunctions: typeof AzureFunctions, logger: Logger): boolean {
  let telemetry;
  try {
    telemetry = processTelemetry();
  } catch (error) {
    // An invalid OTEL_* setting: the runtime reports it at start-up (ECONFIG naming it) and in /api/health.
    const e = asMailError(error);
    logger.error({ operation: 'telemetry', outcome: 'error', code: e.code, field: e.field, error: e.message, hint: e.hint });
    return false;
  }
  if (!telemetry.enabled) return false;
  const { OpenTelemetry } = require('./otel.js') as typeof import('./otel.js');
  if (!(telemetry instanceof OpenTelemetry)) return false;
  const { AzureFunctionsInstrumentationESM } = require('@azure/functions-opentelemetry-instrumentation') as typeof import('@azure/functions-opentelemetry-instrumentation');
  // enabled: false keeps it from hooking require(): the module is handed over here, which also works from a bundle.
  const instrumentation = new AzureFunctionsInstrumentationESM({ enabled: false });
  instrumentation.setTracerProvider(telemetry.tracerProvider);
  // The instrumentation's @opentelemetry/api-logs is older than the SDK's; the provider's getLogger/emit are the same.
  instrumentation.setLoggerProvider(telemetry.loggerProvider as unknown as Parameters<typeof instrumentation.setLoggerProvider>[0]);
  instrumentation.registerAzFunc(azureFunctions);
  azureFunctions.app.hook.appTerminate(() => telemetry.shutdown());
  return true;
}
