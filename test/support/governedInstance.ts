/**
 * One app instance for test/governor/twoInstances.test.ts, as a process of its own: a runtime from
 * its environment (AzureWebJobsStorage, MAIL_PROFILES, the secret), then polling and sending for
 * the one mailbox at once, as a busy instance does. Prints one JSON line: what it did.
 */
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { isMailError } from '../../shared/errors.js';
import { createLogger } from '../../shared/log.js';
import { processQueuedSend } from '../../shared/send/queuedSend.js';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';

interface Plan {
  tag: string;
  sends: number;
  /** Sends in flight at once in this process. */
  concurrency: number;
  polls: number;
  /** Instead: run the send worker over mail-send, as the host does, until the queue is empty. */
  worker?: boolean;
}

/** The queue trigger's part: take up to 8 messages at once, hand each to the worker, delete it; done when nothing is left, visible or not. */
async function work(runtime: MailRuntime): Promise<{ handled: number }> {
  const queue = await runtime.state.account.queue(SEND_QUEUE);
  let handled = 0;
  for (;;) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 8, visibilityTimeout: 60 });
    if (receivedMessageItems.length === 0) {
      if (((await queue.getProperties()).approximateMessagesCount ?? 0) === 0) return { handled };
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    await Promise.all(receivedMessageItems.map(async (m) => {
      const item = JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as unknown;
      await processQueuedSend(runtime, runtime.state.send, item, { dequeueCount: m.dequeueCount, messageId: m.messageId });
      await queue.deleteMessage(m.messageId, m.popReceipt);
      handled++;
    }));
  }
}

async function main(): Promise<void> {
  const plan = JSON.parse(process.env.GOVERNED_INSTANCE ?? '{}') as Plan;
  const warnings: string[] = [];
  const logger = { ...createLogger(), warn: (event: Record<string, unknown>) => warnings.push(String(event.operation)) };
  const runtime = new MailRuntime({ env: process.env, logger });
  if (plan.worker) {
    const report = { ...(await work(runtime)), warnings };
    await runtime.close();
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
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
  process.stdout.write(`${JSON.stringify({ sent, failures, polls, warnings })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
