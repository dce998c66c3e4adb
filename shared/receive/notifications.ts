import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { MailError, inputError } from '../errors.js';
import type { MailRuntime } from '../runtime.js';
import type { SubscriptionRecord } from '../state/index.js';
import { pushProfileNamed, requestPoll, type SubscriptionAction } from './push.js';

/**
 * One item of Graph's changeNotificationCollection
 * (https://learn.microsoft.com/graph/api/resources/changenotification): a change notification
 * carries changeType, resource and resourceData; a lifecycle notification lifecycleEvent. Graph
 * adds fields over time: the others are let through unread.
 */
const notificationItem = z.looseObject({
  subscriptionId: z.string().min(1).max(200),
  clientState: z.string().max(1000).nullish(),
  changeType: z.string().max(100).optional(),
  lifecycleEvent: z.string().max(100).optional(),
  resource: z.string().optional(),
  tenantId: z.string().optional(),
  subscriptionExpirationDateTime: z.string().optional(),
});
export const notificationCollectionSchema = z.object({ value: z.array(notificationItem).min(1).max(1000) });

export type NotificationKind = 'change' | 'lifecycle';

/** Why a notification was passed over; each is counted (mail.notifications.ignored), none is answered differently. */
export type IgnoredReason = 'unknownSubscription' | 'clientState' | 'unknownEvent';

export interface NotificationsOutcome {
  accepted: number;
  ignored: number;
  /** Polls enqueued (a burst for one mailbox coalesces into one). */
  enqueued: number;
}

/**
 * What each lifecycle event asks for (https://learn.microsoft.com/graph/change-notifications-lifecycle-events):
 * reauthorizationRequired: renew (a PATCH of the expiry reauthorizes); subscriptionRemoved: make a
 * new one and read what came meanwhile; missed: Graph dropped notifications, so read the delta.
 */
const LIFECYCLE: Record<string, SubscriptionAction | 'catchUp'> = {
  reauthorizationRequired: 'renew',
  subscriptionRemoved: 'recreate',
  missed: 'catchUp',
};

/**
 * Compared as SHA-256 digests with timingSafeEqual: the time taken says nothing about how much
 * of a guessed clientState was right, nor its length.
 */
function sameSecret(given: string | null | undefined, expected: string | undefined): boolean {
  if (typeof given !== 'string' || expected === undefined) return false;
  const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * Checks a notification POST from Graph and asks for what it calls for: each item must name a
 * subscription this app made (the subscriptions table) and carry its clientState, which is
 * Graph's own authentication of a notification; anything else is ignored and counted, and
 * answered like the rest, so a stranger learns nothing. A change notification asks for a poll of
 * its profile (coalesced: one per mailbox while one is pending); delta stays the source of truth,
 * so the notification's resource is not read. EINPUT when the body is not a notification collection.
 */
export async function acceptNotifications(runtime: MailRuntime, body: unknown, options: { kind: NotificationKind; now?: Date; abortSignal?: AbortSignal }): Promise<NotificationsOutcome> {
  const parsed = notificationCollectionSchema.safeParse(body);
  if (!parsed.success) {
    runtime.telemetry.count('mail.notifications.ignored', { 'mail.reason': 'malformed' });
    throw inputError(parsed.error);
  }
  const items = parsed.data.value;
  const records = new Map<string, Promise<SubscriptionRecord | undefined>>();
  for (const item of items) if (!records.has(item.subscriptionId)) records.set(item.subscriptionId, runtime.state.subscriptions.find(item.subscriptionId, { abortSignal: options.abortSignal }));

  const polls = new Map<string, { subscription?: SubscriptionAction }>();
  const ignored: IgnoredReason[] = [];
  for (const item of items) {
    const record = await records.get(item.subscriptionId);
    const profile = record && pushProfileNamed(runtime, record.profile);
    if (!record || !profile || record.subscriptionId !== item.subscriptionId) {
      ignored.push('unknownSubscription');
      continue;
    }
    if (!sameSecret(item.clientState, record.clientState)) {
      ignored.push('clientState');
      continue;
    }
    const event = options.kind === 'lifecycle' ? item.lifecycleEvent : item.changeType;
    const action = options.kind === 'lifecycle' ? LIFECYCLE[item.lifecycleEvent ?? ''] : undefined;
    if (options.kind === 'lifecycle' && action === undefined) {
      ignored.push('unknownEvent');
      continue;
    }
    runtime.telemetry.count('mail.notifications', { 'mail.profile': profile.name, 'mail.notification': event ?? 'unknown' });
    const wanted = polls.get(profile.name) ?? {};
    // A renewal or a new subscription is asked for once per batch; recreate outranks renew.
    if (action === 'recreate' || (action === 'renew' && wanted.subscription === undefined)) wanted.subscription = action;
    polls.set(profile.name, wanted);
  }
  for (const reason of ignored) runtime.telemetry.count('mail.notifications.ignored', { 'mail.reason': reason });

  const enqueued = await Promise.all([...polls].map(([name, wanted]) =>
    requestPoll(runtime, name, { reason: options.kind === 'lifecycle' ? 'lifecycle' : 'notification', ...wanted, ...(options.now && { now: options.now }), ...(options.abortSignal && { abortSignal: options.abortSignal }) })));
  const outcome = { accepted: items.length - ignored.length, ignored: ignored.length, enqueued: enqueued.filter(Boolean).length };
  runtime.logger[ignored.length > 0 ? 'warn' : 'info']({
    operation: 'notifications',
    kind: options.kind,
    outcome: ignored.length > 0 ? 'skipped' : 'ok',
    ...outcome,
    profiles: [...polls.keys()],
    ...(ignored.length > 0 && { reasons: [...new Set(ignored)] }),
  });
  return outcome;
}

/** How long the notification functions wait for storage: Graph wants an answer within 3 seconds, else it may drop notifications. */
export const NOTIFICATION_DEADLINE_MS = 2_500;

/** The validation token Graph sends on creating a subscription, to be echoed as text/plain; undefined on a notification. */
export function validationToken(query: URLSearchParams): string | undefined {
  const token = query.get('validationToken');
  if (token === null) return undefined;
  if (token.length === 0 || token.length > 4096) throw new MailError('EINPUT', 'validationToken must be 1 to 4096 characters', { field: 'validationToken', hint: 'Graph sends the token it wants echoed.' });
  return token;
}
