import { MailError, isMailError } from '../errors.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import type { MessageSink } from '../sinks/types.js';
import { NO_TELEMETRY, type Telemetry } from '../telemetry/index.js';
import type { DeliveryRecord } from '../state/dedupeStore.js';
import type { ReceiveState } from '../state/index.js';
import type { Acknowledged, Acknowledgement, AfterFetch, MailboxSession, ReaderCursor } from '../transports/types.js';
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
  /** Keeps a copy of each delivered message for redelivery on demand (receive.retainDays); never throws. @default none */
  retain?: (message: DeliveredMessage) => Promise<void>;
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
    return [{ id: p.id, providerId: p.fetched.providerId, outcome: 'deadLettered', errorCode: outcome === 'refused' ? 'ESINK_REJECTED' : p.oversized ? 'ETOO_LARGE' : 'EPARSE' }];
  });
  // Nothing counts as done before its record is stored: a crash here redelivers with the same ids.
  if (records.length > 0) await ctx.state.dedupe.mark(ctx.profile.name, records, { abortSignal: ctx.signal });

  // The unbroken run of handled messages from the window's start is acknowledged together (a
  // transport may batch its afterFetch requests); a message past it is not, and comes again. A
  // delivery recorded past the run gets its afterFetch in the next poll, as a duplicate. An
  // unparseable message stays where it is, for a person to look at, however often it is met.
  const outcomeOf = (p: Planned): Outcome | undefined => (p.step === 'deliver' || p.step === 'deadLetter' ? outcomes.get(p) : p.step);
  const run: Acknowledgement[] = [];
  for (const p of plans) {
    const outcome = outcomeOf(p);
    if (outcome === undefined) break;
    const handled = outcome === 'delivered' || (outcome === 'duplicate' && p.message !== undefined);
    run.push({ message: p.fetched, afterFetch: handled ? ctx.profile.receive.afterFetch : 'none' });
  }
  const acknowledged = await acknowledgeRun(ctx.session, run, ctx.signal);

  // What counts: the acknowledged run, and past it what was recorded anyway (a duplicate or a
  // filtered message past it is met again, and counted then).
  const counted: WindowOutcome['counted'] = [];
  plans.forEach((p, index) => {
    const outcome = outcomeOf(p);
    if (outcome === undefined || (index >= acknowledged.done && (outcome === 'duplicate' || outcome === 'filtered'))) return;
    counted.push({ plan: p, outcome });
  });
  const failedDelivery = deliveries.find((d) => d !== undefined && !d.ok);
  // The first failure in mailbox order: an acknowledgement within the run comes before any delivery past it.
  const failure = acknowledged.failure ?? (failedDelivery && { error: failedDelivery.error });
  return { counted, ...(acknowledged.cursor !== undefined && { cursor: acknowledged.cursor }), ...(failure && { failure }) };
}

/**
 * Acknowledges a run of messages (all at once where the session can, else one by one in order)
 * and answers how many from its start are done, the cursor after them, and the first failure.
 * The cursor never passes a message whose afterFetch failed: that one comes again in the next
 * poll, as a duplicate, and gets its afterFetch then.
 */
async function acknowledgeRun(session: MailboxSession, run: readonly Acknowledgement[], signal: AbortSignal): Promise<{ done: number; cursor?: ReaderCursor; failure?: { error: unknown } }> {
  let answers: Acknowledged[];
  try {
    answers = session.acknowledgeAll ? await session.acknowledgeAll(run, { abortSignal: signal }) : await acknowledgeInOrder(session, run, signal);
  } catch (error) {
    return { done: 0, failure: { error } };
  }
  let cursor: ReaderCursor | undefined;
  for (let done = 0; done < run.length; done++) {
    const answer = answers[done];
    if (answer === undefined) return { done, cursor, failure: { error: new MailError('EPROVIDER', `the reader answered ${answers.length} of ${run.length} acknowledgements`, { hint: 'This is a bug: please report it. The next poll carries on from the stored cursor.' }) } };
    if (!answer.ok) return { done, cursor, failure: { error: answer.error } };
    cursor = answer.cursor ?? cursor;
  }
  return { done: run.length, cursor };
}

/** One at a time, in mailbox order, up to the first failure: the rest are not tried. */
async function acknowledgeInOrder(session: MailboxSession, run: readonly Acknowledgement[], signal: AbortSignal): Promise<Acknowledged[]> {
  const answers: Acknowledged[] = [];
  for (const { message, afterFetch, moveTo } of run) {
    try {
      answers.push({ ok: true, cursor: await session.acknowledge(message, { afterFetch, ...(moveTo !== undefined && { moveTo }), abortSignal: signal }) });
    } catch (error) {
      answers.push({ ok: false, error });
      break;
    }
  }
  return answers;
}

/** Delivers one message, or dead-letters it: unparseable (with the source kept while it was parsed) or refused by the sink. */
async function deliverOne(p: Planned, ctx: DeliveryContext): Promise<'delivered' | 'refused' | 'deadLettered'> {
  const { fetched } = p;
  const put = { abortSignal: ctx.signal };
  if (p.message === undefined || p.oversized) {
    const error = p.oversized
      ? new MailError('ETOO_LARGE', `the message is ${p.oversized.size} bytes, over receive.filters.maxSizeBytes (${p.oversized.limit})`, { profile: ctx.profile.name, field: 'receive.filters.maxSizeBytes', hint: 'Raise the limit to deliver messages this large; this one is kept here with its source.' })
      : p.parseError;
    await ctx.state.deadLetters.put({ profile: ctx.profile.name, providerId: fetched.providerId, error: describeFailure(error), ...(p.source && { source: await p.source.open() }) }, put);
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
    await ctx.retain?.(message);
    const arrived = Date.parse(message.receivedAt);
    if (Number.isFinite(arrived)) telemetry.record('mail.poll.lag', Math.max(0, (Date.now() - arrived) / 1000), attributes);
    return 'delivered';
  });
}
