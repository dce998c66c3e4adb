import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { OtlpReceiverPeer } from '../peers/otlpReceiver.js';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { functionEntryFiles, installFunctionsCore, registeredFunctions, registeredHooks, type CoreBinding } from '../peers/functionsCore.js';
import { runNode } from '../support/runNode.js';

interface Bundler {
  bundle(options: { out: string }): Promise<{ packages: string[]; metafile: Metafile; appMetafile: Metafile }>;
  vendorFile(specifier: string): string;
}

/** The packages the app loads on first use: none of them may be evaluated, or even be in main.js, when the functions register. */
const LAZY_SDKS = ['@azure/identity', '@azure/msal-node', '@azure/keyvault-secrets', '@microsoft/microsoft-graph-client', 'nodemailer', 'imapflow', 'mailparser', '@azure/storage-blob', '@azure/storage-queue', '@azure/data-tables', '@azure/monitor-opentelemetry-exporter', '@opentelemetry/'];

interface ChildReport {
  functions: { name: string; bindings: Record<string, CoreBinding> }[];
  hooks: string[];
  loadedAtRegistration: string[];
  send: { status?: number; body?: string };
  loadedAfterSend: string[];
}

/**
 * Runs in a copy of the package outside the repository, so that no node_modules is in reach:
 * the host's stand-in, main.js, what the host would see registered, then a POST /api/send on the
 * built-in local profile (the file transport composes with nodemailer's MailComposer, from vendor/).
 * It reports in report.json: the app logs to stdout.
 */
const CHILD = `
const core = require('./functionsCore.js');
core.installFunctionsCore();
require('./package/main.js');
const loadedAtRegistration = Object.keys(require.cache);
const functions = core.registeredFunctions();
const send = functions.find((f) => f.name === 'send').handler;
const request = {
  method: 'POST', url: 'http://localhost/api/send', params: {}, query: new URLSearchParams(),
  headers: new Headers({ 'content-type': 'application/json' }),
  body: new Response(JSON.stringify({ to: 'someone@example.com', subject: 'from the bundle', text: 'hello' })).body,
};
const quiet = () => {};
const context = { invocationId: 'bundle-test', functionName: 'send', log: quiet, trace: quiet, debug: quiet, info: quiet, warn: quiet, error: quiet };
send(request, context).then(async (response) => {
  // With an exporter configured: flush the process-wide telemetry (the host's appTerminate would).
  await globalThis[Symbol.for('m365-mail.telemetry')]?.shutdown();
  require('node:fs').writeFileSync(process.env.REPORT ?? 'report.json', JSON.stringify({
    functions: functions.map((f) => ({ name: f.name, bindings: f.bindings })),
    hooks: core.registeredHooks().map((h) => h.name),
    loadedAtRegistration,
    send: { status: response.status, body: response.body },
    loadedAfterSend: Object.keys(require.cache),
  }));
});
`;

describe('the deployment package (npm run bundle)', () => {
  let dir: string;
  let pkg: string;
  let metafile: Metafile;
  let appMetafile: Metafile;
  let packages: string[];
  let report: ChildReport;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-bundle-'));
    pkg = path.join(dir, 'package');
    const bundler = require(path.join(APP_ROOT, 'scripts', 'bundle.js')) as Bundler;
    ({ metafile, appMetafile, packages } = await bundler.bundle({ out: pkg }));
    copyFileSync(path.join(APP_ROOT, 'dist', 'test', 'peers', 'functionsCore.js'), path.join(dir, 'functionsCore.js'));
    writeFileSync(path.join(dir, 'child.js'), CHILD);
    const run = await runNode([path.join(dir, 'child.js')], { cwd: dir, env: { ...process.env, MAIL_DIR: path.join(dir, 'mail'), POLL_SCHEDULE: '0 */5 * * * *' } });
    assert.equal(run.code, 0, run.stderr);
    report = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as ChildReport;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('exports telemetry from the package: the Functions instrumentation and the SDK load from vendor/ and the send\'s span arrives', async () => {
    const receiver = new OtlpReceiverPeer();
    await receiver.start();
    try {
      const run = await runNode([path.join(dir, 'child.js')], { cwd: dir, env: { ...process.env, MAIL_DIR: path.join(dir, 'mail-otel'), REPORT: 'report-otel.json', OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '20' } });
      assert.equal(run.code, 0, run.stderr);
      const otel = JSON.parse(readFileSync(path.join(dir, 'report-otel.json'), 'utf8')) as ChildReport;
      assert.equal(otel.send.status, 200, otel.send.body);
      const vendor = otel.loadedAfterSend.filter((f) => f.startsWith(path.join(pkg, 'vendor'))).map((f) => path.basename(f));
      assert.ok(vendor.includes('azure+functions-opentelemetry-instrumentation.js') && vendor.includes('opentelemetry+sdk-trace-base.js'), vendor.join(', '));
      assert.deepEqual(receiver.spans.filter((sp) => sp.name === 'mail.send').map((sp) => sp.attributes['mail.outcome']), ['sent']);
      assert.ok(receiver.points('mail.sent').length > 0);
    } finally {
      await receiver.stop();
    }
  });

  it('is host.json, a package.json whose main is the bundle with no dependencies, main.js, app.js and vendor/', () => {
    assert.deepEqual(readdirSync(pkg).sort(), ['app.js', 'app.js.map', 'host.json', 'main.js', 'main.js.map', 'package.json', 'vendor']);
    assert.deepEqual(JSON.parse(readFileSync(path.join(pkg, 'host.json'), 'utf8')), JSON.parse(readFileSync(path.join(APP_ROOT, 'host.json'), 'utf8')));
    const manifest = JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')) as Record<string, unknown>;
    const app = JSON.parse(readFileSync(path.join(APP_ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(manifest.main, 'main.js');
    assert.deepEqual(manifest.engines, app.engines);
    for (const key of ['dependencies', 'devDependencies', 'optionalDependencies', 'scripts']) assert.equal(manifest[key], undefined, `package.json has ${key}`);
  });

  it('registers, without node_modules, every function package.json main registers, with the same bindings, and the same hooks', () => {
    installFunctionsCore();
    process.env.POLL_SCHEDULE = '0 */5 * * * *';
    for (const file of functionEntryFiles(APP_ROOT)) require(file);
    const expected = registeredFunctions().map((f) => ({ name: f.name, bindings: f.bindings }));
    assert.ok(expected.length > 0);
    const byName = (list: { name: string }[]) => [...list].sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(JSON.parse(JSON.stringify(byName(report.functions))), JSON.parse(JSON.stringify(byName(expected))));
    assert.deepEqual(report.hooks.sort(), registeredHooks().map((h) => h.name).sort());
  });

  it('evaluates none of the lazily loaded SDKs when the functions register: only main.js is loaded', () => {
    const fromPackage = report.loadedAtRegistration.filter((f) => f.startsWith(pkg + path.sep)).map((f) => path.relative(pkg, f));
    assert.deepEqual(fromPackage, ['main.js']);
  });

  it('registers from main.js alone: none of the app (handlers, zod, the runtime) is in it, only in app.js', () => {
    const inputsOf = (meta: Metafile, file: string) => Object.keys(Object.entries(meta.outputs).find(([f]) => f.endsWith(file))?.[1].inputs ?? {});
    const main = inputsOf(metafile, 'main.js');
    const app = inputsOf(appMetafile, 'app.js');
    for (const part of ['node_modules/zod/', 'shared/runtime.ts', 'functions/handlers/send.ts', 'shared/config/schema.ts']) {
      assert.deepEqual(main.filter((i) => i.includes(part)), [], `${part} is in main.js`);
      assert.ok(app.some((i) => i.includes(part)), `${part} is not in app.js`);
    }
    assert.ok(main.some((i) => i.includes('functions/send.ts')));
  });

  it('app.js exports every handler a registration loads on first call, and the start-up check and OpenAPI builder', () => {
    const app = require(path.join(pkg, 'app.js')) as Record<string, unknown>;
    const wanted = readdirSync(path.join(APP_ROOT, 'functions')).filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(path.join(APP_ROOT, 'functions', f), 'utf8').matchAll(/require\('\.\/handlers\/\w+\.js'\)[^)]*\)\)\.(\w+)/g)].map((m) => m[1]!));
    assert.ok(wanted.length >= 13, wanted.join(', '));
    assert.deepEqual(wanted.filter((name) => typeof app[name] !== 'function'), [], 'a name two handler files export would be left out of app.js by export *');
    assert.equal(typeof app.checkConfiguration, 'function');
    assert.equal(typeof app.buildOpenApiDocument, 'function');
  });

  it('keeps every lazily loaded SDK out of main.js and app.js, in vendor/, and of zod only the English locale', () => {
    const inputs = [metafile, appMetafile].flatMap((meta) => Object.entries(meta.outputs).filter(([file]) => file.endsWith('.js')).flatMap(([, o]) => Object.keys(o.inputs)));
    // nodemailer's address parser (one file of its own) is imported at load by shared/mail/address.ts, as before the bundle.
    const eager = (input: string) => input.includes('node_modules/nodemailer/dist/esm/addressparser/');
    for (const sdk of LAZY_SDKS) {
      assert.deepEqual(inputs.filter((i) => i.includes(`node_modules/${sdk}`) && !eager(i)), [], `${sdk} is in main.js`);
    }
    for (const sdk of LAZY_SDKS.filter((s) => !s.endsWith('/'))) assert.ok(packages.includes(sdk), `${sdk} has no vendor/ file`);
    assert.deepEqual(inputs.filter((i) => /zod\/v4\/locales\/(?!en\.js|index\.js)/.test(i)), []);
  });

  it('takes a lazy path from the bundle: POST /api/send on the local profile writes the message with MailComposer from vendor/', () => {
    assert.equal(report.send.status, 200, report.send.body);
    assert.equal((JSON.parse(report.send.body ?? '{}') as { status?: string }).status, 'sent');
    const outbox = path.join(dir, 'mail', 'outbox');
    const [eml, ...others] = readdirSync(outbox);
    assert.deepEqual(others, []);
    assert.match(readFileSync(path.join(outbox, eml!), 'utf8'), /^Subject: from the bundle$/m);
    const vendor = report.loadedAfterSend.filter((f) => f.startsWith(path.join(pkg, 'vendor'))).map((f) => path.basename(f));
    assert.ok(vendor.includes('nodemailer+lib+mail-composer.js'), `loaded from vendor/: ${vendor.join(', ')}`);
  });
});
