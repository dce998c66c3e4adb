import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { recordProcessFailures } from '../fuzz/report.js';
import { recordRows } from './matrixReport.js';
import { FaultRig, N, type PollRowOptions, type RowCount, type SendRowOptions } from './faultRig.js';

/** Storage stops answering (the emulator's process stopped: every request hangs) for this long, once, mid-run. */
const OUTAGE_MS = 10_000;

/** The row's midpoint (the fault comes with half the messages through) and its quarters (the crash points). */
export const HALF = Math.round(N / 2);
export const QUARTERS = [Math.round(N / 4), HALF, Math.round((3 * N) / 4)];

/** A hook for a row's onAccepted / onAcknowledged: `act` once, at the count `at`. */
export function once(at: number, act: (rig: FaultRig) => void): (count: number, rig: FaultRig) => void {
  return (count, rig) => {
    if (count === at) act(rig);
  };
}

/** Stops Azurite's process for OUTAGE_MS: every storage request in flight or made meanwhile hangs, then goes through. */
export function outage(rig: FaultRig): void {
  rig.azurite.freeze();
  setTimeout(() => rig.azurite.thaw(), OUTAGE_MS).unref();
}

/**
 * One path's half of the fault matrix (the send path and the poll path are two files, which
 * test/run.js runs side by side, each with its own peers): a test per row asserting 0 lost and
 * 0 duplicated, and the table printed at the end. FAULTS_ONLY (a pattern) runs only the rows it matches.
 */
export function faultMatrix(path: 'send', rows: SendRowOptions[]): void;
export function faultMatrix(path: 'poll', rows: PollRowOptions[]): void;
export function faultMatrix(path: 'send' | 'poll', rows: Array<SendRowOptions | PollRowOptions>): void {
  describe(`fault matrix, ${path} path: ${N} messages per fault, nothing lost, nothing duplicated`, { timeout: 15 * 60_000 }, () => {
    const rig = new FaultRig();
    const counted: RowCount[] = [];
    const failures = recordProcessFailures();
    const started = Date.now();
    before(() => rig.start());
    after(async () => {
      rig.azurite.thaw();
      await rig.stop();
      recordRows(path, counted, (Date.now() - started) / 1000);
    });
    const only = process.env.FAULTS_ONLY ? new RegExp(process.env.FAULTS_ONLY, 'i') : undefined;
    for (const options of rows) {
      const name = 'profile' in options ? `${options.profile}: ${options.fault}` : `${options.via}: ${options.fault}`;
      if (only && !only.test(`${path} ${name}`)) continue;
      it(name, { timeout: 5 * 60_000 }, async () => {
        const row = 'profile' in options ? await rig.sendRow(options) : await rig.pollRow(options);
        counted.push(row);
        process.stderr.write(`fault matrix: ${row.path} ${row.transport} ${row.fault}: in ${row.in}, delivered ${row.delivered}, lost ${row.lost}, dup ${row.dupById}/${row.dupByMessageId}, same id again ${row.sameIdAgain}, ${row.otherLabel}, ${row.seconds.toFixed(0)} s\n`);
        assert.equal(row.lost, 0, `${row.fault}: lost`);
        assert.equal(row.dupById, 0, `${row.fault}: duplicated by id`);
        assert.equal(row.dupByMessageId, 0, `${row.fault}: duplicated by Message-ID`);
        assert.equal(row.other, 'poison' in options ? (options.poison ?? 0) : 0, `${row.fault}: ${row.otherLabel}`);
      });
    }
    it('nothing escaped a handler (an unhandled rejection or an uncaught exception would crash a worker)', () => {
      assert.deepEqual(failures, { unhandledRejections: [], uncaughtExceptions: [] });
    });
  });
}
