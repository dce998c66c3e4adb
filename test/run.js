#!/usr/bin/env node
// Test entry: makes a throwaway CA and a loopback server certificate, then runs node's test
// runner over the compiled tests with NODE_EXTRA_CA_CERTS set, which Node reads only at start-up.
// Every peer (token endpoint, Key Vault, Graph, SMTP, IMAP, POP3) serves that certificate, so the
// real clients verify TLS exactly as in production: no rejectUnauthorized: false anywhere.
'use strict';
const { spawnSync } = require('node:child_process');
const { mkdtempSync, writeFileSync, readdirSync, statSync, rmSync } = require('node:fs');
const os = require('node:os');
const path = require('node:path');

async function main() {
  const selfsigned = require('selfsigned');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'm365-mail-test-'));
  const notAfterDate = new Date(Date.now() + 7 * 24 * 3600 * 1000);
  const ca = await selfsigned.generate([{ name: 'commonName', value: 'm365-mail test CA' }], {
    keySize: 2048,
    notAfterDate,
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  const server = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    notAfterDate,
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
    ],
  });
  writeFileSync(path.join(dir, 'ca.pem'), ca.cert);
  writeFileSync(path.join(dir, 'server.pem'), server.cert);
  writeFileSync(path.join(dir, 'server.key'), server.private);

  const root = path.resolve(__dirname, '..');
  const testRoot = path.join(root, 'dist', 'test');
  const wanted = process.argv.slice(2);
  const files = [];
  (function walk(d) {
    for (const name of readdirSync(d).sort()) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.test.js') && (wanted.length === 0 || wanted.some((w) => full.includes(w)))) files.push(full);
    }
  })(testRoot);
  if (files.length === 0) {
    console.error(`no test files found under ${testRoot}${wanted.length ? ` matching ${wanted.join(', ')}` : ''}`);
    process.exit(1);
  }

  const env = { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'), TEST_TLS_DIR: dir };
  // Tests reach loopback only; make sure no proxy setting routes them elsewhere.
  for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY']) delete env[k];
  env.NO_PROXY = '127.0.0.1,localhost';
  const result = spawnSync(process.execPath, ['--test', '--test-concurrency=2', ...files], { stdio: 'inherit', env, cwd: root });
  rmSync(dir, { recursive: true, force: true });
  process.exit(result.status ?? 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
