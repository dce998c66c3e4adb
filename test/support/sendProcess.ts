/**
 * A send in a process of its own, so that a test can kill it (SIGKILL) at the worst moment: the
 * provider has the message and the process has not written the outcome. Configured by its
 * environment as the app is (AzureWebJobsStorage, MAIL_PROFILES, secrets); argv[2] is the job:
 * `{ "kind": "queued", "item": {...}, "messageId": "..." }` runs the send worker on one queue
 * item, `{ "kind": "sync", "id", "body", "key" }` one sync POST /api/send with an Idempotency-Key.
 * Prints one line, `{"outcome": ...}` or `{"error": code}`, if it lives that long.
 */
import { isMailError } from '../../shared/errors.js';
import { MailRuntime } from '../../shared/runtime.js';
import { acceptSend } from '../../shared/send/acceptSend.js';
import { processQueuedSend } from '../../shared/send/queuedSend.js';

type Job = { kind: 'queued'; item: unknown; messageId: string } | { kind: 'sync'; id: string; body: Record<string, unknown>; key: string };

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '{}') as Job;
  const runtime = new MailRuntime({ env: process.env });
  try {
    const outcome =
      job.kind === 'queued'
        ? await processQueuedSend(runtime, runtime.state.send, job.item, { messageId: job.messageId, dequeueCount: 1 })
        : (await acceptSend(runtime, job.body, { id: job.id, mode: 'sync', idempotencyKey: job.key })).status;
    process.stdout.write(`${JSON.stringify({ outcome })}\n`);
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ error: isMailError(error) ? error.code : String(error) })}\n`);
  } finally {
    await runtime.close();
  }
}

void main();
