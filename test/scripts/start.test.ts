import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { runNode, type NodeRun } from '../support/runNode.js';

/**
 * `npm start`'s script, run from a copy of the app root that has no node_modules, so that a
 * Core Tools install on the developer's machine cannot change what the test sees: `func`
 * is only what the test puts on PATH.
 */
function start(appRoot: string, args: string[], env: Record<string, string>): Promise<NodeRun> {
  return runNode([path.join(appRoot, 'scripts', 'start.js'), ...args], { cwd: appRoot, env });
}

describe('npm start (scripts/start.js)', () => {
  let dir: string;
  let appRoot: string;
  let emptyBin: string;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-start-'));
    appRoot = path.join(dir, 'app');
    mkdirSync(path.join(appRoot, 'scripts'), { recursive: true });
    copyFileSync(path.join(APP_ROOT, 'scripts', 'start.js'), path.join(appRoot, 'scripts', 'start.js'));
    copyFileSync(path.join(APP_ROOT, 'local.settings.sample.json'), path.join(appRoot, 'local.settings.sample.json'));
    emptyBin = path.join(dir, 'empty-bin');
    mkdirSync(emptyBin);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('without Core Tools says in one line how to install them and how to use the CLI instead, and exits non-zero', async () => {
    const run = await start(appRoot, [], { PATH: emptyBin });
    assert.notEqual(run.code, 0);
    assert.equal(run.stdout, '');
    const lines = run.stderr.trim().split('\n');
    assert.equal(lines.length, 1, run.stderr);
    assert.match(lines[0]!, /npm i -g azure-functions-core-tools@4/);
    assert.match(lines[0]!, /npx m365-mail send /);
  });

  it('runs `func start` with the extra arguments in the app root, passes its exit code on, and leaves Azurite alone when storage points elsewhere', async () => {
    const bin = path.join(dir, 'fake-bin');
    mkdirSync(bin);
    const record = path.join(dir, 'func-invocation.json');
    const func = path.join(bin, 'func');
    writeFileSync(
      func,
      `#!${process.execPath}\nrequire('node:fs').writeFileSync(${JSON.stringify(record)}, JSON.stringify({ args: process.argv.slice(2), cwd: process.cwd() }));\nprocess.exit(3);\n`,
    );
    chmodSync(func, 0o755);
    const run = await start(appRoot, ['--port', '7099'], {
      PATH: bin,
      AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=elsewhere;EndpointSuffix=core.windows.net',
    });
    assert.equal(run.code, 3, run.stderr);
    assert.deepEqual(JSON.parse(readFileSync(record, 'utf8')), { args: ['start', '--port', '7099'], cwd: appRoot });
    assert.doesNotMatch(run.stdout, /Azurite/);
    assert.ok(existsSync(path.join(appRoot, 'local.settings.json')), 'local.settings.json is created from the sample');
    assert.deepEqual(JSON.parse(readFileSync(path.join(appRoot, 'local.settings.json'), 'utf8')), JSON.parse(readFileSync(path.join(appRoot, 'local.settings.sample.json'), 'utf8')));
  });
});
