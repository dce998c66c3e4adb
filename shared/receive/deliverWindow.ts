import { isMailError } from '../errors.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import type { MessageSink } from '../sinks/types.js';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/index.js';
import type { DeliveryRecord } from '../state/dedupeStore.js';
import type { ReceiveState } from '../state/index.js';
import type { AfterFetch, MailboxSession, ReaderCursor } from '../transports/types.js';
import type { Planned } from './planWindow.js';
import { describeFailure } from './pollError.js';
import { settleBounded } from './settleBounded.js';

/** What became of a planned message. */
export type Outcome = 'delivered' | 'refused' | 'deadLettered' | 'duplicate' | 'filtered';

export interface DeliveryContext {
  profile: { name: string; receive: { afterFetch: AfterFetch } };
  sink: MessageSink;
  state: Pick<ReceiveState, 'dedupe' | 'deadLetters'>;
  session: MailboxSession;
  /** Deliveries in flight at once to a sink that keeps no order. */
  concurrency: number;
  signal: AbortSignal;
  /** The message as delivered, for one whose attachments were deferred (Parsed.attachmentsDeferred): stores them. */
  complete?: (plan: Planned) => Promise<DeliveredMessage>;
  /** Each delivery a `mail.deliver` span, each delivered message's lag from arrival a `mail.poll.lag` reading. @default none */
  telemetry?: Telemetry;
}

export interface WindowOutcome {
  /** What counts, in mailbox order: the acknowledged run, and past a failure what was recorded anyway. */
  counted: Array<{ plan: Planned; outcome: Outcome }>;
  /** The cursor after the acknowledged run; undefined when it did not move (or the reader advances per round). */
  cursor?: ReaderCursor;
  /** The first delivery that failed: the cursor stopped before it. */
  failure?: { error: unknown };
}

/**
 * Delivers a planned window: to the sink (a webhook one at a time in mailbox order, since a
 * consumer may rely on a reply arriving after what it answers and a failing webhook is not sent
 * the rest; a queue several at once), dead-letters what cannot be parsed or the sink refused,
 * records every outcome in the dedupe table in one go, then acknowledges to the reader the
 * unbroken run of handled messages from the window's start. What failed comes again in the next
 * poll; what was delivered after it is recorded, so it is skipped then, not delivered twice.
 */
export async function deliverWindow(plans: readonly Planned[], ctx: DeliveryContext): Promise<WindowOutcome> {
  const work = plans.filter((p) => p.step === 'deliver' || p.step === 'deadLetter');
  const ordered = ctx.sink.kind !== 'queue';
  const deliveries = await settleBounded(work, { limit: ordered ? 1 : ctx.concurrency }, (p) => deliverOne(p, ctx));
  const outcomes = new Map<Planned, Outcome>();
  work.forEach((p, i) => {
    const outcome = deliveries[i];
    if (outcome?.ok) outcomes.set(p, outcome.value);
  });
  // Dead-letters are recorded too: a resync or a lost cursor write must not dead-letter a message again.
  const records = work.flatMap((p): DeliveryRecord[] => {
    const outcome = outcomes.get(p);
    if (outcome === undefined) return [];
    if (outcome === 'delivered') return [{ id: p.id, providerId: p.fetched.providerId, outcome }];
    return [{ id: p.id, providerId: p.fetched.providerId, outcome: 'deadLettered', errorCode: outcome === 'refused' ? 'ESINK_REJECTED' : 'EPARSE' }];
  });
  // Nothing counts as done before its record is stored: a crash here redelivers with the same ids.
  if (records.length > 0) await ctx.state.dedupe.mark(ctx.profile.name, records, { abortSignal: ctx.signal });

  const counted: WindowOutcome['counted'] = [];
  let cursor: ReaderCursor | undefined;
  let acknowledging = true;
  for (const p of plans) {
    const outcome = p.step === 'deliver' || p.step === 'deadLetter' ? outcomes.get(p) : p.step;
    if (outcome === undefined) {
      // It failed or never ran: the cursor stops before it.
      acknowledging = false;
      continue;
    }
    if (acknowledging) {
      // A delivery recorded past the failure gets its afterFetch in the next poll, as a duplicate.
      // An unparseable message stays where it is, for a person to look at, however often it is met.
      const handled = outcome === 'delivered' || (outcome === 'duplicate' && p.message !== undefined);
      cursor = (await ctx.session.acknowledge(p.fetched, { afterFetch: handled ? ctx.profile.receive.afterFetch : 'none', abortSignal: ctx.signal })) ?? cursor;
    } else if (outcome === 'duplicate' || outcome === 'filtered') {
      continue;
    }
    counted.push({ plan: p, outcome });
  }
  const failed = deliveries.find((d) => d !== undefined && !d.ok);
  return { counted, ...(cursor !== undefined && { cursor }), ...(failed && { failure: { error: failed.error } }) };
}

/** Delivers one message, or dead-letters it: unparseable (with the source kept while it was parsed) or refused by the sink. */
async function deliverOne(p: Planned, ctx: DeliveryContext): Promise<'delivered' | 'refused' | 'deadLettered'> {
  const { fetched } = p;
  const put = { abortSignal: ctx.signal };
  if (p.message === undefined) {
    await ctx.state.deadLetters.put({ profile: ctx.profile.name, providerId: fetched.providerId, error: describeFailure(p.parseError), ...(p.source && { source: await p.source.open() }) }, put);
    return 'deadLettered';
  }
  const message = p.attachmentsDeferred && ctx.complete ? await ctx.complete(p) : p.message;
  const telemetry = ctx.telemetry ?? NO_TELEMETRY;
  const attributes = { 'mail.profile': ctx.profile.name, 'mail.sink': ctx.sink.kind };
  return telemetry.span('mail.deliver', attributes, async (span) => {
    try {
      await ctx.sink.deliver(message, put);
    } catch (error) {
      if (!isMailError(error) || error.code !== 'ESINK_REJECTED') throw error;
      span.set({ 'mail.outcome': 'refused', 'error.type': error.code });
      await ctx.state.deadLetters.put({ profile: ctx.profile.name, providerId: fetched.providerId, error: describeFailure(error), message }, put);
      return 'refused';
    }
    span.set({ 'mail.outcome': 'delivered' });
    const arrived = Date.parse(message.receivedAt);
    if (Number.isFinite(arrived)) telemetry.record('mail.poll.lag', Math.max(0, (Date.now() - arrived) / 1000), attributes);
    return 'delivered';
  });
}
