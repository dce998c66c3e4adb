import { setTimeout } from 'node:timers/promises';
import { z } from 'zod';
import type { GraphConnection } from './graphClient.js';

/**
 * How long a lookup waits for the copy to appear: Graph answers sendMail with 202 before
 * Exchange has filed the copy in Sent Items, which usually takes a second or two and under load
 * longer. The lookup asks at once and then after each of these pauses, so "not sent" is
 * concluded at the earliest some 21 s after the lookup began (and a takeover itself comes
 * only after the crashed attempt's hold). The bound is kept short because the caller (a
 * worker, or a repeated sync request) waits for it; SENT_ITEMS_LOOKUP_SECONDS scales it.
 */
export const SENT_ITEMS_RETRY_DELAYS_MS = [1_000, 2_000, 4_000, 6_000, 8_000];
const SENT_ITEMS_WAIT_MS = SENT_ITEMS_RETRY_DELAYS_MS.reduce((sum, ms) => sum + ms, 0);

/** The pauses of a lookup that concludes "not sent" after `seconds` in all: the same steps, scaled. */
export function sentItemsRetryDelays(seconds: number): number[] {
  return SENT_ITEMS_RETRY_DELAYS_MS.map((ms) => Math.round((ms * seconds * 1000) / SENT_ITEMS_WAIT_MS));
}

const lookupAnswer = z.object({ value: z.array(z.object({ id: z.string() })) });

/** A string literal of OData (OData ABNF, SQUOTE-in-string): single quotes doubled. */
export function odataString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Whether the mailbox's Sent Items holds a message with this internetMessageId:
 * `GET /users/{mailbox}/mailFolders/sentitems/messages?$filter=internetMessageId eq '<id>'&$select=id`
 * (https://learn.microsoft.com/graph/api/user-list-messages; Mail.Send alone does not allow it:
 * the lookup needs Mail.ReadBasic, Mail.Read or Mail.ReadWrite).
 */
export async function foundInSentItems(graph: GraphConnection, messageId: string, options: { abortSignal?: AbortSignal; retryDelaysMs?: readonly number[] } = {}): Promise<boolean> {
  const delays = options.retryDelaysMs ?? SENT_ITEMS_RETRY_DELAYS_MS;
  for (let pass = 0; ; pass++) {
    const answer = await graph.call(`${graph.userPath}/mailFolders/sentitems/messages`, options, (request) =>
      request.filter(`internetMessageId eq ${odataString(messageId)}`).select('id').top(1).get() as Promise<unknown>,
    );
    const parsed = lookupAnswer.safeParse(answer);
    if (parsed.success && parsed.data.value.length > 0) return true;
    const delay = delays[pass];
    if (delay === undefined) return false;
    await setTimeout(delay, undefined, { signal: options.abortSignal });
  }
}
