#!/usr/bin/env node
// Test entry: makes a throwaway CA and a loopback server certificate, then runs node's test
// runner over the compiled tests with NODE_EXTRA_CA_CERTS set, which Node reads only at start-up.
// Every peer (token endpoint, Key Vault, Graph, SMTP, IMAP, POP3) serves that certificate, so the
// real clients verify TLS exactly as in production: no rejectUnauthorized: false anywhere.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, mkdtempSync, readdirSync, rmSync, statSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

async function main() {
  const root = path.resolve(__dirname, '..');
  const testRoot = path.join(root, 'dist', 'test');
  // `--e2e` runs the end-to-end files (`*.e2e.js`: real Dovecot and Postfix, root) instead of
  // the unit and integration tests, which never need root or system packages; `--fuzz` the fuzz
  // suite (`*.fuzz.js`: generated requests and MIME sources, minutes rather than seconds);
  // `--faults` the fault matrix (`*.faults.js`: 1,000 messages per fault and path, minutes).
  const args = process.argv.slice(2);
  const suffix = args.includes('--e2e') ? '.e2e.js' : args.includes('--fuzz') ? '.fuzz.js' : args.includes('--faults') ? '.faults.js' : '.test.js';
  const wanted = args.filter((a) => a !== '--e2e' && a !== '--fuzz' && a !== '--faults');
  const files = [];
  (function walk(d) {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith(suffix) && (wanted.length === 0 || wanted.some((w) => full.includes(w)))) files.push(full);
    }
  })(testRoot);
  if (files.length === 0) {
    console.error(`no test files found under ${testRoot}${wanted.length ? ` matching ${wanted.join(', ')}` : ''}`);
    process.exit(1);
  }

  // The app reads profiles.json at its root when no other profiles are configured (git ignores it, so
  // a developer may well have one): it would replace the built-in profile several tests rely on and
  // fail them with messages about someone's own profiles. Say so instead.
  if (existsSync(path.join(root, 'profiles.json'))) {
    console.error(`${path.join(root, 'profiles.json')} exists: the tests need the app root without one (it replaces the built-in local profile). Move it elsewhere and point MAIL_PROFILES_FILE at it when running the app.`);
    process.exit(1);
  }

  // Compiled from test/peers/testCa.ts (npm test builds first); the benchmarks use it too.
  const { createTestCa } = require(path.join(root, 'dist', 'test', 'peers', 'testCa.js'));
  const ca = await createTestCa();
  const env = { ...process.env, ...ca.env };
  // Tests reach loopback only; make sure no proxy setting routes them elsewhere.
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY']) delete env[k];
  env.NO_PROXY = '127.0.0.1,localhost';
  // ...and make it a checked fact: every test process (and the CLI and Azurite processes they start)
  // loads the guard that refuses connections beyond loopback and fails the file that tried one.
  const guard = path.join(testRoot, 'support', 'loopbackOnly.js');
  env.NODE_OPTIONS = [env.NODE_OPTIONS, `--require ${JSON.stringify(guard)}`].filter(Boolean).join(' ');
  // The fault matrix's files run side by side and leave their rows for one table printed here.
  const faults = args.includes('--faults');
  const tableDir = faults ? mkdtempSync(path.join(os.tmpdir(), 'fault-matrix-')) : undefined;
  if (tableDir) env.FAULTS_TABLE_DIR = tableDir;
  const started = Date.now();
  const result = spawnSync(process.execPath, ['--test', `--test-concurrency=${faults ? files.length : 2}`, ...files], { stdio: 'inherit', env, cwd: root });
  if (tableDir) {
    require(path.join(testRoot, 'faults', 'matrixReport.js')).printMatrix(tableDir, (Date.now() - started) / 1000);
    rmSync(tableDir, { recursive: true, force: true });
  }
  ca.dispose();
  process.exit(result.status ?? 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
