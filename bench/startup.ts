/**
 * Cold start: how long a fresh Node process takes to load our functions, next to bare Node
 * and to each SDK loaded alone. Every figure is the median of N child processes (cases
 * interleaved round by round, so drift hits all alike). It also lists which SDKs loading
 * the functions pulled in: none should be, since transports and secret stores load their
 * SDKs on first use. Figures only, never asserted.
 *
 * "all functions (bundle)" is the deployment package (scripts/bundle.js, built here into a
 * temporary folder outside the repository, so no node_modules is in reach): its main.js
 * registered through the same stand-in for the host as package.json main's files. The goal
 * of issue 10 is that case at most 1.5 times bare Node; the last line prints the ratio.
 *
 *   npm run bench:startup               (N = 15)
 *   npm run bench:startup -- --runs 40
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

const root = path.resolve(__dirname, '..', '..');
const SDKS = ['@azure/functions', '@azure/identity', '@azure/keyvault-secrets', '@microsoft/microsoft-graph-client', 'nodemailer', 'imapflow', 'mailparser', '@azure/storage-queue', '@azure/storage-blob', '@azure/data-tables'];

/**
 * Runs in the child after its requires: each SDK package in the module cache, with its file
 * count, from node_modules or, in the bundle, from vendor/ (one file per package).
 */
const reportLoaded = `const path = require('node:path'); const files = Object.keys(require.cache);
const vendorFile = (p) => path.sep + 'vendor' + path.sep + p.replace(/^@/, '').split('/').join('+') + '.js';
process.stdout.write(JSON.stringify(${JSON.stringify(SDKS)}.map((p) => [p, files.filter((f) => f.includes(path.join('node_modules', p) + path.sep) || f.endsWith(vendorFile(p))).length]).filter(([, n]) => n > 0).map(([p, n]) => p + ' (' + n + (n === 1 ? ' file)' : ' files)'))))`;

/** The child's script: the host's stand-in (a copy next to the bundle, which has no dist/ in reach), then the app's files. */
function appScript(files: string[], core = path.join(root, 'dist', 'test', 'peers', 'functionsCore.js')): string {
  return `require(${JSON.stringify(core)}).installFunctionsCore(); ${files.map((f) => `require(${JSON.stringify(f)});`).join(' ')} ${reportLoaded}`;
}

/** Builds the deployment package into a temporary folder, with the host's stand-in beside it. */
async function bundleOutsideRepository(): Promise<{ main: string; core: string; dispose(): void }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'm365-bench-bundle-'));
  const { bundle } = require(path.join(root, 'scripts', 'bundle.js')) as { bundle(options: { out: string }): Promise<unknown> };
  await bundle({ out: path.join(dir, 'package') });
  const core = path.join(dir, 'functionsCore.js');
  copyFileSync(path.join(root, 'dist', 'test', 'peers', 'functionsCore.js'), core);
  return { main: path.join(dir, 'package', 'main.js'), core, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

interface Case {
  name: string;
  script: string;
  /** Where the child runs; the repository root unless given. */
  cwd?: string;
}

const BARE = 'bare node -e 0';
const BUNDLE = 'all functions (bundle)';

function cases(bundled: { main: string; core: string }): Case[] {
  const functionsDir = path.join(root, 'dist', 'functions');
  const { functionEntryFiles } = require(path.join(root, 'dist', 'test', 'peers', 'functionsCore.js')) as typeof import('../test/peers/functionsCore.js');
  return [
    { name: BARE, script: '0' },
    { name: 'functions/send.js (with @azure/functions)', script: appScript([path.join(functionsDir, 'send.js')]) },
    { name: 'all functions (package.json main)', script: appScript(functionEntryFiles(root)) },
    { name: BUNDLE, script: appScript([bundled.main], bundled.core), cwd: path.dirname(bundled.main) },
    ...SDKS.map((sdk) => ({ name: `${sdk} alone`, script: `require(${JSON.stringify(sdk)}); ${reportLoaded}` })),
  ];
}

function runOnce({ script, cwd = root }: Case): { ms: number; loaded: string[] } {
  const started = process.hrtime.bigint();
  const child = spawnSync(process.execPath, ['-e', script], { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (child.status !== 0) throw new Error(`child failed (${child.status}): ${child.stderr}`);
  return { ms, loaded: child.stdout.trim() ? (JSON.parse(child.stdout) as string[]) : [] };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' } } });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs must be a positive integer');
  const bundled = await bundleOutsideRepository();
  try {
    measure(cases(bundled), runs);
  } finally {
    bundled.dispose();
  }
}

function measure(all: Case[], runs: number): void {
  const times = new Map<string, number[]>(all.map((c) => [c.name, []]));
  const loaded = new Map<string, string[]>();
  for (const c of all) runOnce(c); // warm the file cache, not measured
  for (let round = 0; round < runs; round++) {
    for (const c of all) {
      const result = runOnce(c);
      times.get(c.name)!.push(result.ms);
      loaded.set(c.name, result.loaded);
    }
  }
  const bare = median(times.get(BARE)!);
  const width = Math.max(...all.map((c) => c.name.length));
  console.log(`cold start: median of ${runs} child processes each, node ${process.version} on ${process.platform}/${process.arch}`);
  console.log(`${'case'.padEnd(width)}  ${'ms'.padStart(7)}  ${'x bare'.padStart(6)}  SDKs in the module cache`);
  for (const c of all) {
    const ms = median(times.get(c.name)!);
    console.log(`${c.name.padEnd(width)}  ${ms.toFixed(1).padStart(7)}  ${(ms / bare).toFixed(2).padStart(6)}  ${(loaded.get(c.name) ?? []).join(', ') || '-'}`);
  }
  console.log(`${BUNDLE}: ${(median(times.get(BUNDLE)!) / bare).toFixed(2)} x bare node (goal: at most 1.5)`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
