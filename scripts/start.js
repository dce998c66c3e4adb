#!/usr/bin/env node
// `npm start` (after the build): Azurite in the background for AzureWebJobsStorage, then
// `func start` in the foreground; Azurite stops when the host does. Extra arguments go to
// `func start` (`npm start -- --port 7072`).
'use strict';
const { spawn } = require('node:child_process');
const { accessSync, constants, copyFileSync, existsSync, readFileSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const isWindows = process.platform === 'win32';

/** `func` on PATH, else the optional dependency's shim in node_modules/.bin. */
function findFunc() {
  const names = isWindows ? ['func.cmd', 'func.exe', 'func'] : ['func'];
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), path.join(root, 'node_modules', '.bin')];
  for (const dir of dirs) {
    for (const name of names) {
      const candidate = path.join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not in this directory: keep looking
      }
    }
  }
  return undefined;
}

/** The host reads local.settings.json; the first run gets one from the sample (it is never committed). */
function localSettings() {
  const file = path.join(root, 'local.settings.json');
  if (!existsSync(file)) {
    copyFileSync(path.join(root, 'local.settings.sample.json'), file);
    console.log('start: created local.settings.json from local.settings.sample.json');
  }
  return JSON.parse(readFileSync(file, 'utf8')).Values ?? {};
}

/** Azurite serves the development storage; a real account (a connection string, or identity-based AzureWebJobsStorage__* settings) needs none. */
function needsAzurite(settings) {
  const all = { ...settings, ...process.env };
  if (Object.keys(all).some((name) => name.startsWith('AzureWebJobsStorage__') && String(all[name]).trim() !== '')) return false;
  const storage = all.AzureWebJobsStorage ?? '';
  return storage.trim() === '' || /UseDevelopmentStorage=true/i.test(storage);
}

/** Starts Azurite on its default ports and resolves once all three services listen. */
function startAzurite() {
  const entry = require.resolve('azurite/dist/src/azurite.js', { paths: [root] });
  const args = ['--silent', '--skipApiVersionCheck', '--location', '.azurite', '--blobHost', '127.0.0.1', '--queueHost', '127.0.0.1', '--tableHost', '127.0.0.1'];
  const child = spawn(process.execPath, [entry, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let output = '';
    const listening = new Map();
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
    function fail(error) {
      clearTimeout(timer);
      child.kill();
      reject(error);
    }
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`Azurite exited with ${code} (is another emulator using ports 10000-10002?):\n${output}`)));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.stdout.on('data', function onData(chunk) {
      output += chunk;
      for (const m of output.matchAll(/Azurite (Blob|Queue|Table) service is successfully listening at (\S+)/g)) listening.set(m[1], m[2]);
      if (listening.size === 3) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        child.stdout.off('data', onData);
        child.stdout.resume();
        child.stderr.resume();
        console.log(`start: Azurite ${[...listening].map(([s, url]) => `${s.toLowerCase()} ${url}`).join(', ')} (state in .azurite/)`);
        resolve(child);
      }
    });
  });
}

async function main() {
  const func = findFunc();
  if (!func) {
    console.error(
      'start: Azure Functions Core Tools v4 (`func`) is not installed: `npm i -g azure-functions-core-tools@4` (or your OS package) installs it; without the host, `npx m365-mail send --to someone@example.com --subject hi --text hello` runs the same code.',
    );
    return 1;
  }
  const settings = localSettings();
  const azurite = needsAzurite(settings) ? await startAzurite() : undefined;
  const stopAzurite = () => {
    if (azurite && azurite.exitCode === null) azurite.kill();
  };
  process.on('exit', stopAzurite);
  const host = spawn(func, ['start', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', shell: isWindows });
  // Ctrl+C reaches the host through the terminal; a signal sent to this process alone is passed on.
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => host.kill(signal));
  return new Promise((resolve) => {
    host.once('error', (error) => {
      console.error(`start: could not run ${func}: ${error.message}`);
      resolve(1);
    });
    host.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  }).finally(stopAzurite);
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`start: ${error.message}`);
    process.exitCode = 1;
  },
);
