import { setTimeout as sleep } from 'node:timers/promises';
import { pollMailbox, type PollResult } from '../../shared/receive/pollMailbox.js';
import type { MailRuntime } from '../../shared/runtime.js';

export interface PollTally {
  polls: number;
  failed: number;
  leased: number;
  delivered: number;
  deadLettered: number;
  duplicates: number;
  resynced: number;
  lastError?: string;
}

/**
 * Polls a profile as the timer would, one poll after another (a pause after one that failed or
 * found the mailbox leased), until a poll completes finding nothing new: the mailbox is drained.
 */
export async function pollUntilDrained(runtime: MailRuntime, profile: string, options: { patienceMs?: number } = {}): Promise<PollTally> {
  const until = Date.now() + (options.patienceMs ?? 300_000);
  const tally: PollTally = { polls: 0, failed: 0, leased: 0, delivered: 0, deadLettered: 0, duplicates: 0, resynced: 0 };
  while (Date.now() < until) {
    let result: PollResult;
    try {
      result = await pollMailbox(runtime, profile);
    } catch (error) {
      tally.failed++;
      tally.lastError = String(error);
      await sleep(500);
      continue;
    }
    tally.polls++;
    tally.delivered += result.delivered;
    tally.deadLettered += result.deadLettered;
    tally.duplicates += result.duplicates;
    if (result.resynced) tally.resynced++;
    if (result.status === 'leased') {
      tally.leased++;
      await sleep(500);
      continue;
    }
    if (result.status !== 'completed') {
      tally.failed++;
      tally.lastError = result.error ? `${result.error.code}: ${result.error.message}` : result.status;
      await sleep(250);
      continue;
    }
    if (result.delivered === 0 && result.deadLettered === 0 && result.duplicates === 0) return tally;
  }
  return tally;
}
