import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The loopback certificate made by test/run.js, trusted by this process through NODE_EXTRA_CA_CERTS. */
export function serverTls(): { key: Buffer; cert: Buffer; ca: Buffer } {
  const dir = process.env.TEST_TLS_DIR;
  if (!dir) throw new Error('TEST_TLS_DIR is not set: run the tests through `npm test` (test/run.js)');
  return {
    key: readFileSync(path.join(dir, 'server.key')),
    cert: readFileSync(path.join(dir, 'server.pem')),
    ca: readFileSync(path.join(dir, 'ca.pem')),
  };
}
