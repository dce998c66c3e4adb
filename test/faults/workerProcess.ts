/**
 * A worker in a process of its own, for the fault matrix's crash rows: the parent kills it
 * (SIGKILL) at the named moment and a fresh worker takes over. Configured by its environment
 * as the app is (AzureWebJobsStorage, MAIL_PROFILES, secrets); argv[2] is the job:
 * `{ "kind": "send" }` drains mail-send as the host does, `{ "kind": "poll", "profile" }` polls
 * that profile until the mailbox is drained. Prints one JSON line if it lives that long.
 */
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { drainSendQueue } from './queueHost.js';
import { pollUntilDrained } from './pollLoop.js';

type Job = { kind: 'send' } | { kind: 'poll'; profile: string };

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const runtime = new MailRuntime({ env: process.env });
  setRuntime(runtime);
  try {
    const result = job.kind === 'send' ? await drainSendQueue(runtime.state.send) : await pollUntilDrained(runtime, job.profile);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await runtime.close();
  }
}

void main();
