import { z } from 'zod';
import { MailError, inputError } from '../errors.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import type { MailRuntime } from '../runtime.js';

/** At most this many messages per request: a larger range is answered in parts (`more`). */
export const REDELIVER_MAX_MESSAGES = 1000;

/** POST /api/profiles/{name}/redeliver: by id, or by when they were delivered ([from, to), ISO 8601). */
export const redeliverRequestSchema = z
  .object({
    ids: z.array(z.string().min(1).max(1024)).min(1).max(REDELIVER_MAX_MESSAGES).optional().meta({ description: 'Stable ids of delivered messages (the `id` the sink got).' }),
    from: z.iso.datetime({ offset: true }).optional().meta({ description: 'Delivered at or after this time. With `ids` absent, required.' }),
    to: z.iso.datetime({ offset: true }).optional().meta({ description: 'Delivered before this time; default now.' }),
  })
  .strict();
export type RedeliverRequest = z.output<typeof redeliverRequestSchema>;

export interface RedeliverResult {
  profile: string;
  /** The ids delivered again, in the order they went. */
  redelivered: string[];
  /** Asked for by id, but no copy is kept: never delivered, delivered before retention began, or past receive.retainDays. */
  missing: string[];
  /** The range holds more than REDELIVER_MAX_MESSAGES: ask again from the last one's delivery time. */
  more: boolean;
}

/**
 * Delivers again, to the profile's sink, messages it delivered before, from the copy kept for
 * `receive.retainDays`: with the same stable ids (a consumer that dedupes on them sees a
 * duplicate, one that lost its database gets them back), marked as a redelivery (the webhook's
 * `X-Mail-Redelivery: true`, the queue message's `"redelivery": true`). In the order they were
 * delivered; a sink failure stops it there (the request may simply be repeated).
 */
export async function redeliver(runtime: MailRuntime, profileName: string, body: unknown, options: { abortSignal?: AbortSignal } = {}): Promise<RedeliverResult> {
  const found = runtime.profile(profileName);
  const receive = found.receive;
  if (receive === undefined) {
    throw new MailError('EINPUT', `profile "${found.name}" has no receive section`, { field: 'profile', profile: found.name, hint: 'Only a receiving profile delivers messages.' });
  }
  const profile = { ...found, receive };
  const parsed = redeliverRequestSchema.safeParse(body);
  if (!parsed.success) throw inputError(parsed.error);
  const request = parsed.data;
  if (request.ids === undefined && request.from === undefined) {
    throw new MailError('EINPUT', 'ids or from is required', { field: 'ids', hint: 'Name the messages by id ({"ids": [...]}), or the time they were delivered ({"from": "2026-12-01T00:00:00Z", "to": ...}).' });
  }
  if (profile.receive.retainDays === 0) {
    throw new MailError('EINPUT', `profile "${profile.name}" keeps no copies of delivered messages (receive.retainDays is 0)`, { field: 'receive.retainDays', profile: profile.name, hint: `Set profiles.${profile.name}.receive.retainDays (default 7) to keep them; messages delivered before that cannot be redelivered.` });
  }
  const retained = runtime.state.receive.retained;
  const notBefore = new Date(Date.now() - profile.receive.retainDays * 86_400_000);
  let ids: string[];
  let more = false;
  if (request.ids !== undefined) {
    ids = [...new Set(request.ids)];
  } else {
    const from = new Date(Math.max(Date.parse(request.from!), notBefore.getTime()));
    const to = request.to === undefined ? new Date() : new Date(request.to);
    ({ ids, more } = await retained.delivered(profile.name, { from, to, limit: REDELIVER_MAX_MESSAGES }, options));
  }
  const sink = runtime.sink(profile);
  const result: RedeliverResult = { profile: profile.name, redelivered: [], missing: [], more };
  for (const id of ids) {
    const message = await retained.get<DeliveredMessage>(profile.name, id, { ...options, notBefore });
    if (!message) {
      result.missing.push(id);
      continue;
    }
    await sink.deliver(message, { ...options, redelivery: true });
    result.redelivered.push(id);
  }
  runtime.logger.info({ operation: 'redeliver', profile: profile.name, outcome: 'ok', redelivered: result.redelivered.length, missing: result.missing.length, more });
  return result;
}
