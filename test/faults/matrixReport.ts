import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { table } from '../fuzz/report.js';
import { N, type RowCount } from './faultRig.js';

interface FileRows {
  path: 'send' | 'poll';
  seconds: number;
  rows: RowCount[];
}

/**
 * Keeps a file's rows for the table test/run.js prints once every file has run
 * (FAULTS_TABLE_DIR, which it sets); run alone, a file prints its own.
 */
export function recordRows(kind: 'send' | 'poll', rows: RowCount[], seconds: number): void {
  const dir = process.env.FAULTS_TABLE_DIR;
  const entry: FileRows = { path: kind, seconds, rows };
  if (!dir) return void process.stdout.write(`${matrixTable([entry])}\n`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${process.pid}.json`), JSON.stringify(entry));
}

/** The matrix from every file's rows in `dir`, send path first. */
export function printMatrix(dir: string, totalSeconds: number): void {
  const entries = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as FileRows);
  process.stdout.write(`${matrixTable(entries, totalSeconds)}\n`);
}

function matrixTable(entries: FileRows[], totalSeconds?: number): string {
  const rows = entries.flatMap((e) => e.rows).sort((a, b) => (a.path === b.path ? 0 : a.path === 'send' ? -1 : 1));
  const header = ['fault', 'path', 'transport', 'in', 'delivered', 'lost', 'dup (id)', 'dup (Message-ID)', 'same id again', 'also', 's'];
  const body = rows.map((r) => [r.fault, r.path, r.transport, r.in, r.delivered, r.lost, r.dupById, r.dupByMessageId, r.sameIdAgain, r.otherLabel, r.seconds.toFixed(0)]);
  const short = N < 1000 ? ` (FAULTS_N=${N}: fewer than the issue's 1,000)` : '';
  return [
    '',
    `Fault matrix: ${N} messages per row and path${short}, ${rows.length} rows${totalSeconds === undefined ? '' : `, ${totalSeconds.toFixed(0)} s in all`}`,
    table(header, body),
    'send: delivered = send ids of which the SMTP/Graph peer accepted a copy (the subject names the send); dup (id) = copies beyond the first per send id;',
    '  dup (Message-ID) = copies beyond the first per Message-ID; also = the status rows (each must say sent).',
    'poll: delivered = seeded messages the webhook acknowledged (2xx) at least once; dup (id) = stable ids beyond the first per seeded message;',
    '  dup (Message-ID) = stable ids beyond the first per Message-ID; also = the dead-letters (the poison row: each unparseable source once);',
    '  same id again = acknowledgements of an id already acknowledged (a 2xx the app had stopped waiting for, a crash between the',
    '  acknowledgement and the dedupe record): at least once, as promised, the same id and JSON a consumer dedupes on; counted, not asserted.',
    'lost, dup (id) and dup (Message-ID) are asserted 0 in every row.',
    ...rows.filter((r) => r.note).map((r) => `  ${r.path} ${r.transport}, ${r.fault}: ${r.note}`),
  ].join('\n');
}
