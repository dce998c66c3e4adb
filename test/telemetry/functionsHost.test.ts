import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { OtlpReceiverPeer } from '../peers/otlpReceiver.js';
import { runNode } from '../support/runNode.js';

const DIST = path.join(APP_ROOT, 'dist');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const HOST_SPAN_ID = '00f067aa0ba902b7';

/**
 * The app as the Functions host loads it, in a child process (the host's worker reads
 * process.env, and @azure/functions keeps its setup per process): the functions' modules with the
 * stand-in for the host's core API (test/peers/functionsCore.ts), then an invocation run through
 * the preInvocation hooks the app registered, as the host runs it, with the host's traceparent.
 */
/** The child's answer: its last RESULT line (the app's own log lines go to stdout too). */
function resultOf<T>(stdout: string): T {
  const line = stdout.split('\n').reverse().find((l) => l.startsWith('RESULT '));
  assert.ok(line, stdout);
  return JSON.parse(line.slice('RESULT '.length)) as T;
}

function appProcess(script: string, env: NodeJS.ProcessEnv) {
  const prelude = `
    const path = require('node:path');
    const core = require(${JSON.stringify(path.join(DIST, 'test', 'peers', 'functionsCore.js'))});
    core.installFunctionsCore();
    for (const file of core.functionEntryFiles(${JSON.stringify(APP_ROOT)})) require(file);
    const out = (value) => process.stdout.write('\\nRESULT ' + JSON.stringify(value) + '\\n');
  `;
  const clean: NodeJS.ProcessEnv = { ...process.env, MAIL_DIR: path.join(APP_ROOT, '.mail-test-none'), ...env };
  for (const key of Object.keys(clean)) if (/^(OTEL_|APPLICATIONINSIGHTS_)/.test(key) && !(key in env)) delete clean[key];
  return runNode(['-e', `${prelude}\n(async () => {\n${script}\n})().catch((e) => { console.error(e); process.exit(1); });`], { cwd: APP_ROOT, env: clean });
}

describe('the Functions host integration (host.json telemetryMode OpenTelemetry)', () => {
  const receiver = new OtlpReceiverPeer();
  before(() => receiver.start());
  after(() => receiver.stop());

  it('an invocation\'s spans are children of the host\'s traceparent, the worker\'s logs are exported, and the host is told the worker sends them', async () => {
    const run = await appProcess(`
      const { InvocationContext } = require('@azure/functions');
      const { processTelemetry } = require(${JSON.stringify(path.join(DIST, 'shared', 'telemetry', 'index.js'))});
      const invocationContext = new InvocationContext({ invocationId: 'inv-1', functionName: 'send', traceContext: { traceParent: '00-${TRACE_ID}-${HOST_SPAN_ID}-01', traceState: '' } });
      const init = { invocationContext, inputs: [], functionCallback: () => processTelemetry().span('mail.send', { 'mail.profile': 'p' }, async () => 'done') };
      for (const hook of core.registeredHooks().filter((h) => h.name === 'preInvocation')) await hook.callback(init);
      const answer = await init.functionCallback();
      for (const hook of core.registeredHooks().filter((h) => h.name === 'log')) hook.callback({ level: 'information', message: 'worker log line 42', category: 'user', invocationContext });
      const capabilities = await core.reportedCapabilities();
      await processTelemetry().shutdown();
      out({ answer, capabilities });
    `, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '20', OTEL_BLRP_SCHEDULE_DELAY: '20' });
    assert.equal(run.code, 0, run.stderr);
    const result = resultOf<{ answer: string; capabilities: Record<string, string> }>(run.stdout);
    assert.equal(result.answer, 'done');
    assert.equal(result.capabilities.WorkerOpenTelemetryEnabled, 'true');
    const span = receiver.spans.find((s) => s.name === 'mail.send');
    assert.ok(span, JSON.stringify(receiver.spans));
    assert.deepEqual([span.traceId, span.parentSpanId], [TRACE_ID, HOST_SPAN_ID]);
    assert.ok(receiver.logs.some((l) => l.body === 'worker log line 42' && l.severity === 'information'), JSON.stringify(receiver.logs));
  });

  it('without an exporter nothing of OpenTelemetry is loaded, no hook is registered, and the host keeps sending the logs', async () => {
    const run = await appProcess(`
      const { MailRuntime } = require(${JSON.stringify(path.join(DIST, 'shared', 'runtime.js'))});
      const { sendMail } = require(${JSON.stringify(path.join(DIST, 'shared', 'send', 'sendMail.js'))});
      const runtime = new MailRuntime({ env: { ...process.env, MAIL_DIR: require('node:os').tmpdir() + '/m365-otel-none-' + process.pid } });
      await sendMail(runtime, { to: 'a@example.com', subject: 's', text: 't' });
      await runtime.close();
      const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/](@opentelemetry|@azure[\\\\/](monitor-opentelemetry-exporter|functions-opentelemetry-instrumentation))[\\\\/]/.test(f));
      out({ loaded, hooks: core.registeredHooks().map((h) => h.name), capabilities: await core.reportedCapabilities(), enabled: runtime.telemetry.enabled });
    `, {});
    assert.equal(run.code, 0, run.stderr);
    const result = resultOf<{ loaded: string[]; hooks: string[]; capabilities: Record<string, string>; enabled: boolean }>(run.stdout);
    assert.equal(result.enabled, false);
    assert.deepEqual(result.loaded, []);
    assert.deepEqual(result.hooks.filter((h) => h !== 'appStart'), []);
    assert.equal(result.capabilities.WorkerOpenTelemetryEnabled, undefined);
  });

  it('with an exporter the same code loads the SDK (the check above can fail)', async () => {
    const run = await appProcess(`
      const { processTelemetry } = require(${JSON.stringify(path.join(DIST, 'shared', 'telemetry', 'index.js'))});
      const loaded = Object.keys(require.cache).filter((f) => /node_modules[\\\\/]@opentelemetry[\\\\/]/.test(f)).length;
      await processTelemetry().shutdown();
      out({ loaded });
    `, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(resultOf<{ loaded: number }>(run.stdout).loaded > 0);
  });
});
