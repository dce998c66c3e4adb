import type { FilterConfig } from '../config/schema.js';
import type { MailError } from '../errors.js';
import { matchesFilters } from '../mail/filters.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import type { FetchedMessage } from '../transports/types.js';

/** One message of a window: parsed, or found unparseable (any other failure stops the window). */
export interface Parsed {
  fetched: FetchedMessage;
  started: number;
  /** The message's stable id; for an unparseable one, that of its raw bytes. */
  id: string;
  message?: DeliveredMessage;
  parseError?: MailError;
  /**
   * The source, kept while it was parsed (it is read from the mailbox once): an unparseable
   * message's, for its dead-letter, or one whose attachments are stored only once it is to be delivered.
   */
  source?: { open(): Promise<NodeJS.ReadableStream>; dispose(): Promise<void> };
  /** Its large attachments were counted, not stored: DeliveryContext.complete stores them before it is delivered. */
  attachmentsDeferred?: boolean;
  /** Over `receive.filters.maxSizeBytes`: dead-lettered with its source (kept in `source`), never delivered nor silently filtered. */
  oversized?: { size: number; limit: number };
}

/** What the poll does with a parsed message. */
export interface Planned extends Parsed {
  step: 'deliver' | 'deadLetter' | 'duplicate' | 'filtered';
  reason?: string;
}

/**
 * Which messages of a window are new, which are dead-lettered and which the filters pass over,
 * in mailbox order. Pure: `recorded` holds the ids the dedupe table already has. A message met
 * twice in one window (the same message in a folder twice) is a duplicate the second time.
 */
export function planWindow(parsed: readonly Parsed[], options: { recorded: ReadonlySet<string>; filters?: FilterConfig }): Planned[] {
  const handled = new Set(options.recorded);
  const filters = options.filters;
  return parsed.map((p): Planned => {
    const message = p.message;
    if (handled.has(p.id)) return { ...p, step: 'duplicate' };
    if (message === undefined) {
      handled.add(p.id);
      return { ...p, step: 'deadLetter' };
    }
    if (p.oversized) {
      handled.add(p.id);
      return { ...p, step: 'deadLetter', reason: `size ${p.oversized.size} bytes is over maxSizeBytes ${p.oversized.limit}` };
    }
    const verdict = filters === undefined ? undefined : matchesFilters(message, { ...(p.fetched.seen !== undefined && { seen: p.fetched.seen }), ...(p.fetched.size !== undefined && { size: p.fetched.size }) }, filters);
    if (verdict && !verdict.pass) return { ...p, step: 'filtered', ...(verdict.reason !== undefined && { reason: verdict.reason }) };
    handled.add(p.id);
    return { ...p, step: 'deliver' };
  });
}
