import type { FilterConfig } from '../config/schema.js';
import type { DeliveredMessage, Importance } from './incoming.js';

/** What the reader knows besides the source: IMAP/Graph report the read flag, every reader the size. */
export interface FilterMeta {
  seen?: boolean;
  /** Size of the message in bytes as the provider reports it; the parsed source size stands in when absent. */
  size?: number;
}

export interface FilterResult {
  pass: boolean;
  /** Why a message was dropped, for the poll's log and counts. */
  reason?: string;
}

const IMPORTANCE_RANK: Record<Importance, number> = { low: 0, normal: 1, high: 2 };

/**
 * Applies a profile's `receive.filters` to one parsed message.
 *
 * Sender lists and keywords:
 * - `emails`: the From address, case-insensitive; `*@domain` matches every address at exactly that domain.
 * - `domains`: the From address's domain or any subdomain of it (`contoso.com` matches `eu.contoso.com`).
 * - `keywords`: case-insensitive substrings of the subject or the text body.
 * - `allow` mode: a message passes when it matches ANY entry of the three lists; with all three
 *   empty, every message passes.
 * - `ignore` mode: a message is dropped when it matches ANY entry; empty lists drop nothing.
 *
 * Then every condition that is set must hold: `unreadOnly` (a message the reader reports as
 * read is dropped; POP3 has no read flag, so nothing is dropped there), `hasAttachments` (true:
 * at least one attachment that is not an inline image; false: none), `minImportance`,
 * and `requireAuthenticated` (the receiving organisation authenticated the
 * sender's domain: `authentication.verdict` is `pass`; allow lists match `From`, which a sender
 * writes as it likes, so an allow list that decides anything needs it).
 *
 * `maxSizeBytes` is not a filter: a message over it is dead-lettered with its source by the poll
 * (shared/receive/planWindow.ts), never passed over in silence.
 */
export function matchesFilters(message: DeliveredMessage, meta: FilterMeta, filters: FilterConfig): FilterResult {
  const listed = listMatch(message, filters);
  if (filters.mode === 'allow' && hasLists(filters) && listed === undefined) return drop('sender and content match no allow-list entry');
  if (filters.mode === 'ignore' && listed !== undefined) return drop(`matches ignore-list entry ${listed}`);
  if (filters.unreadOnly && meta.seen === true) return drop('already read');
  if (filters.hasAttachments !== undefined) {
    const attached = message.attachments.some((a) => !a.inline);
    if (filters.hasAttachments && !attached) return drop('has no attachments');
    if (!filters.hasAttachments && attached) return drop('has attachments');
  }
  if (filters.minImportance !== undefined && IMPORTANCE_RANK[message.importance] < IMPORTANCE_RANK[filters.minImportance]) {
    return drop(`importance ${message.importance} is below ${filters.minImportance}`);
  }
  if (filters.requireAuthenticated && message.authentication.verdict !== 'pass') return drop(`sender not authenticated (verdict ${message.authentication.verdict})`);
  return { pass: true };
}

function drop(reason: string): FilterResult {
  return { pass: false, reason };
}

function hasLists(filters: FilterConfig): boolean {
  return filters.emails.length + filters.domains.length + filters.keywords.length > 0;
}

/** The first list entry the message matches, named for the reason, or undefined. */
function listMatch(message: DeliveredMessage, filters: FilterConfig): string | undefined {
  const sender = message.from?.address.toLowerCase();
  if (sender !== undefined) {
    const domain = sender.slice(sender.lastIndexOf('@') + 1);
    const email = filters.emails.find((entry) => {
      const pattern = entry.trim().toLowerCase();
      return pattern === sender || pattern === `*@${domain}`;
    });
    if (email !== undefined) return `email ${email}`;
    const domainEntry = filters.domains.find((entry) => {
      const wanted = entry.trim().toLowerCase().replace(/^[@.]|^\*\./, '');
      return domain === wanted || domain.endsWith(`.${wanted}`);
    });
    if (domainEntry !== undefined) return `domain ${domainEntry}`;
  }
  const haystack = `${message.subject}\n${message.text ?? ''}`.toLowerCase();
  const keyword = filters.keywords.find((entry) => haystack.includes(entry.toLowerCase()));
  return keyword === undefined ? undefined : `keyword ${keyword}`;
}
