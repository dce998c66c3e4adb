import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { runNode } from '../support/runNode.js';

/**
 * Cold start (issue 10, item 3): registering the functions loads none of the app. In a fresh
 * process with the host's stand-in, package.json main's files register every function while
 * zod, the runtime, the profiles and the handlers stay out of the module cache; one invocation
 * then loads its handler.
 */
describe('registering the functions loads none of the app', () => {
  it('no handler, runtime, schema or zod at registration; the first invocation loads its handler', async () => {
    const core = path.join(APP_ROOT, 'dist', 'test', 'peers', 'functionsCore.js');
    const script = `
      const core = require(${JSON.stringify(core)});
      core.installFunctionsCore();
      for (const file of core.functionEntryFiles(${JSON.stringify(APP_ROOT)})) require(file);
      const ours = () => Object.keys(require.cache).filter((f) => /node_modules[\\\\/]zod[\\\\/]|dist[\\\\/](shared[\\\\/](runtime|config[\\\\/]schema|profiles)|functions[\\\\/]handlers)/.test(f)).map((f) => f.replace(/.*(node_modules|dist)[\\\\/]/, ''));
      const atRegistration = ours();
      const health = core.registeredFunctions().find((f) => f.name === 'health');
      Promise.resolve(health.handler({}, { log() {}, error() {}, warn() {}, invocationId: 'x' })).catch(() => {}).then(() => {
        process.stdout.write('\\nRESULT ' + JSON.stringify({ registered: core.registeredFunctions().length, atRegistration, afterHealth: ours() }) + '\\n');
      });
    `;
    const run = await runNode(['-e', script], { cwd: APP_ROOT, env: { ...process.env, MAIL_DIR: path.join(APP_ROOT, '.mail-lazy-test') } });
    assert.equal(run.code, 0, run.stderr);
    const line = run.stdout.split('\n').find((l) => l.startsWith('RESULT '));
    const result = JSON.parse(line!.slice(7)) as { registered: number; atRegistration: string[]; afterHealth: string[] };
    assert.ok(result.registered >= 13);
    assert.deepEqual(result.atRegistration, []);
    assert.ok(result.afterHealth.some((f) => f.includes('handlers') && f.includes('health')), JSON.stringify(result.afterHealth));
    assert.ok(result.afterHealth.some((f) => f.startsWith('zod')), 'the handler brought zod');
  });
});
