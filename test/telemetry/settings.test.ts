import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isMailError } from '../../shared/errors.js';
import { silentLogger } from '../../shared/log.js';
import { redact } from '../../shared/redact.js';
import { MailRuntime } from '../../shared/runtime.js';
import { telemetrySettings } from '../../shared/telemetry/settings.js';

const fieldOf = (env: NodeJS.ProcessEnv): string | undefined => {
  try {
    telemetrySettings(env);
  } catch (error) {
    if (isMailError(error) && error.code === 'ECONFIG') return error.field;
    throw error;
  }
  return undefined;
};

describe('telemetry settings: the OpenTelemetry specification\'s variables and Application Insights\'', () => {
  it('nothing configured, or OTEL_SDK_DISABLED: no telemetry', () => {
    assert.equal(telemetrySettings({}), undefined);
    assert.equal(telemetrySettings({ OTEL_SDK_DISABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318' }), undefined);
    assert.equal(telemetrySettings({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', OTEL_LOGS_EXPORTER: 'none' }), undefined);
  });

  it('the base endpoint gets /v1/<signal>; a signal\'s own endpoint, protocol and headers win for it', () => {
    const s = telemetrySettings({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector.contoso.com:4318/',
      OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'https://metrics.contoso.com/ingest',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'api-key=abc%3D%3D,tenant=t1',
      OTEL_EXPORTER_OTLP_LOGS_HEADERS: 'tenant=t2',
      OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment=prod,service.namespace=mail',
    })!;
    assert.deepEqual(s.otlp.traces, { url: 'https://collector.contoso.com:4318/v1/traces', protocol: 'http/json', headers: { 'api-key': 'abc==', tenant: 't1' }, timeoutMs: 10_000 });
    assert.deepEqual([s.otlp.metrics?.url, s.otlp.metrics?.protocol], ['https://metrics.contoso.com/ingest', 'http/protobuf']);
    assert.deepEqual(s.otlp.logs?.headers, { 'api-key': 'abc==', tenant: 't2' });
    assert.deepEqual(s.resourceAttributes, { 'deployment.environment': 'prod', 'service.namespace': 'mail' });
    assert.equal(s.serviceName, 'm365-mail-functions');
  });

  it('Azure Monitor: the connection string, and Entra authentication with the identity it names', () => {
    const s = telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=k;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/', APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=c1' })!;
    assert.deepEqual(s.azureMonitor?.entra, { clientId: 'c1' });
    assert.deepEqual(s.otlp, {});
    assert.equal(telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=k' })!.azureMonitor?.entra, undefined);
  });

  it('each invalid setting is ECONFIG naming it', () => {
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), 'OTEL_EXPORTER_OTLP_PROTOCOL');
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_EXPORTER_OTLP_LOGS_PROTOCOL: 'grpc' }), 'OTEL_EXPORTER_OTLP_LOGS_PROTOCOL');
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }), 'OTEL_EXPORTER_OTLP_ENDPOINT');
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://x/v1/traces' }), 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_TRACES_EXPORTER: 'zipkin' }), 'OTEL_TRACES_EXPORTER');
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_EXPORTER_OTLP_HEADERS: '=x' }), 'OTEL_EXPORTER_OTLP_HEADERS');
    assert.equal(fieldOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://localhost:4318', OTEL_METRIC_EXPORT_INTERVAL: '1m' }), 'OTEL_METRIC_EXPORT_INTERVAL');
    assert.equal(fieldOf({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'not-one' }), 'APPLICATIONINSIGHTS_CONNECTION_STRING');
  });

  it('the runtime refuses them at start-up, and an OTLP header\'s value never reaches a log line', async () => {
    assert.throws(() => new MailRuntime({ env: { MAIL_DIR: '/nonexistent', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, logger: silentLogger }), (e) => isMailError(e) && e.field === 'OTEL_EXPORTER_OTLP_PROTOCOL');
    const key = 'otlp-api-key-9b1f77';
    const runtime = new MailRuntime({ env: { MAIL_DIR: '/nonexistent', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_EXPORTER_OTLP_HEADERS: `x-api-key=${key}` }, logger: silentLogger });
    await runtime.telemetry.shutdown();
    assert.equal(redact(`exporting with ${key}`).includes(key), false);
  });
});
