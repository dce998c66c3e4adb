/**
 * Cold start: how long a fresh Node process takes to load our functions, next to bare Node
 * and to each SDK loaded alone. Every figure is the median of N child processes (cases
 * interleaved round by round, so drift hits all alike). It also lists which SDKs loading
 * the functions pulled in: none should be, since transports and secret stores load their
 * SDKs on first use. Figures only, never asserted.
 *
 *   npm run bench:startup               (N = 15)
 *   npm run bench:startup -- --runs 40
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(__dirname, '..', '..');
const SDKS = ['@azure/functions', '@azure/identity', '@azure/keyvault-secrets', '@microsoft/microsoft-graph-client', 'nodemailer', 'imapflow', 'mailparser', '@azure/storage-queue', '@azure/storage-blob', '@azure/data-tables'];

/** Runs in the child after its requires: each SDK package in the module cache, with its file count. */
const reportLoaded = `const path = require('node:path'); const files = Object.keys(require.cache);
process.stdout.write(JSON.stringify(${JSON.stringify(SDKS)}.map((p) => [p, files.filter((f) => f.includes(path.join('node_modules', p) + path.sep)).length]).filter(([, n]) => n > 0).map(([p, n]) => p + ' (' + n + (n === 1 ? ' file)' : ' files)'))))`;

function appScript(files: string[]): string {
  const core = JSON.stringify(path.join(root, 'dist', 'test', 'peers', 'functionsCore.js'));
  return `require(${core}).installFunctionsCore(); ${files.map((f) => `require(${JSON.stringify(f)});`).join(' ')} ${reportLoaded}`;
}

interface Case {
  name: string;
  script: string;
}

function cases(): Case[] {
  const functionsDir = path.join(root, 'dist', 'functions');
  const { functionEntryFiles } = require(path.join(root, 'dist', 'test', 'peers', 'functionsCore.js')) as typeof import('../test/peers/functionsCore.js');
  return [
    { name: 'bare node -e 0', script: '0' },
    { name: 'functions/send.js (with @azure/functions)', script: appScript([path.join(functionsDir, 'send.js')]) },
    { name: 'all functions (package.json main)', script: appScript(functionEntryFiles(root)) },
    ...SDKS.map((sdk) => ({ name: `${sdk} alone`, script: `require(${JSON.stringify(sdk)}); ${reportLoaded}` })),
  ];
}

function runOnce(script: string): { ms: number; loaded: string[] } {
  const started = process.hrtime.bigint();
  const child = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (child.status !== 0) throw new Error(`child failed (${child.status}): ${child.stderr}`);
  return { ms, loaded: child.stdout.trim() ? (JSON.parse(child.stdout) as string[]) : [] };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function main(): void {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const all = cases();
  const times = new Map<string, number[]>(all.map((c) => [c.name, []]));
  const loaded = new Map<string, string[]>();
  for (const c of all) runOnce(c.script); // warm the file cache, not measured
  for (let round = 0; round < runs; round++) {
    for (const c of all) {
      const result = runOnce(c.script);
      times.get(c.name)!.push(result.ms);
      loaded.set(c.name, result.loaded);
    }
  }
  const bare = median(times.get(all[0]!.name)!);
  const width = Math.max(...all.map((c) => c.name.length));
  console.log(`cold start: median of ${runs} child processes each, node ${process.version} on ${process.platform}/${process.arch}`);
  console.log(`${'case'.padEnd(width)}  ${'ms'.padStart(7)}  ${'x bare'.padStart(6)}  SDKs in the module cache`);
  for (const c of all) {
    const ms = median(times.get(c.name)!);
    console.log(`${c.name.padEnd(width)}  ${ms.toFixed(1).padStart(7)}  ${(ms / bare).toFixed(2).padStart(6)}  ${(loaded.get(c.name) ?? []).join(', ') || '-'}`);
  }
}

main();
