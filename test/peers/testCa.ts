import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCa {
  /** Holds ca.pem, server.pem and server.key, as `serverTls()` reads them. */
  dir: string;
  /** What a child process needs to trust the CA (Node reads NODE_EXTRA_CA_CERTS only at start-up) and find the certificate. */
  env: { NODE_EXTRA_CA_CERTS: string; TEST_TLS_DIR: string };
  dispose(): void;
}

/**
 * A throwaway CA and a loopback server certificate (SAN localhost and 127.0.0.1). Every peer
 * serves it, so the real clients verify TLS exactly as in production: no
 * rejectUnauthorized: false anywhere. Used by test/run.js and by the benchmarks.
 */
export async function createTestCa(): Promise<TestCa> {
  const selfsigned = require('selfsigned') as typeof import('selfsigned');
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
  return {
    dir,
    env: { NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'), TEST_TLS_DIR: dir },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Node reads NODE_EXTRA_CA_CERTS only at start-up: makes the test CA, runs `script` again with
 * it trusted (and no proxy between it and loopback), and resolves to that run's exit code.
 */
export async function rerunWithTestCa(script: string, args: string[]): Promise<number> {
  const ca = await createTestCa();
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, ...ca.env, NO_PROXY: '127.0.0.1,localhost' };
    for (const k of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'ALL_PROXY']) delete env[k];
    return spawnSync(process.execPath, [script, ...args], { stdio: 'inherit', env }).status ?? 1;
  } finally {
    ca.dispose();
  }
}
