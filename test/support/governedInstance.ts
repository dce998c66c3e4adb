/**
 * One app instance for test/governor/twoInstances.test.ts, as a process of its own: a runtime from
 * its environment (AzureWebJobsStorage, MAIL_PROFILES, the secret), then polling and sending for
 * the one mailbox at once, as a busy instance does. Prints one JSON line: what it did.
 */
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { isMailError } from '../../shared/errors.js';

interface Plan {
  tag: string;
  sends: number;
  /** Sends in flight at once in this process. */
  concurrency: number;
  polls: number;
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env.GOVERNED_INSTANCE ?? '{}') as Plan;
  const runtime = new MailRuntime({ env: process.env });
  const failures: string[] = [];
  let sent = 0;
  let next = 0;
  const sender = async () => {
    while (next < plan.sends) {
      const i = next++;
      try {
        await sendMail(runtime, { profile: 'graph', to: 'alice@example.com', subject: `${plan.tag} ${i}`, text: 'Hello.' });
        sent++;
      } catch (error) {
        failures.push(isMailError(error) ? error.code : String(error));
      }
    }
  };
  const poller = async () => {
    const outcomes: string[] = [];
    for (let i = 0; i < plan.polls; i++) {
      try {
        const result = await pollMailbox(runtime, 'graph');
        outcomes.push(result.status);
      } catch (error) {
        failures.push(isMailError(error) ? error.code : String(error));
      }
    }
    return outcomes;
  };
  const [polls] = await Promise.all([poller(), ...Array.from({ length: plan.concurrency }, sender)]);
  await runtime.close();
  process.stdout.write(`${JSON.stringify({ sent, failures, polls })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
