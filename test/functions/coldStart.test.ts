import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { runNode } from '../support/runNode.js';

const root = path.resolve(__dirname, '..', '..', '..');

/** SDKs that only a transport, a secret store, a credential or the state stores needs: loaded on first use. */
const LAZY_SDKS = ['@azure/identity', '@azure/msal-node', '@azure/keyvault-secrets', '@microsoft/microsoft-graph-client', 'imapflow', 'mailparser', '@azure/storage-queue', '@azure/storage-blob', '@azure/data-tables'];

describe('cold start: loading the function files loads no SDK a request may not need', () => {
  it('every dist/functions file together loads none of the lazy SDKs, and of nodemailer only its address parser', async () => {
    const core = JSON.stringify(path.join(root, 'dist', 'test', 'peers', 'functionsCore.js'));
    const script = `const core = require(${core}); core.installFunctionsCore();
for (const file of core.functionEntryFiles(${JSON.stringify(root)})) require(file);
process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
    const run = await runNode(['-e', script], { cwd: root, env: { ...process.env, NODE_OPTIONS: '' } });
    assert.equal(run.code, 0, run.stderr);
    const loaded = (JSON.parse(run.stdout) as string[]).map((f) => f.split(path.sep).join('/'));
    const inPackage = (name: string) => loaded.filter((f) => f.includes(`/node_modules/${name}/`));
    for (const sdk of LAZY_SDKS) assert.deepEqual(inPackage(sdk), [], `${sdk} was loaded at start-up`);
    // The address parser checks addresses at the boundary; the MIME composer is the transports' business.
    assert.deepEqual(inPackage('nodemailer').filter((f) => !f.includes('/addressparser/')), [], 'nodemailer beyond its address parser was loaded at start-up');
  });
});
