import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { GraphFailure, parse, type PeerAnswer } from './graphMailboxes.js';

/** Graph's longest subscription to Outlook messages. https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime */
const MESSAGE_MAX_MINUTES = 10_080;
/** Graph gives an endpoint this long to answer its validation request. https://learn.microsoft.com/graph/change-notifications-delivery-webhooks#notificationurl-validation */
const VALIDATION_TIMEOUT_MS = 10_000;
/** clientState is at most 128 characters. https://learn.microsoft.com/graph/api/resources/subscription#properties */
const CLIENT_STATE_MAX = 128;

export interface PeerSubscription {
  id: string;
  resource: string;
  mailbox: string;
  /** Undefined: the whole mailbox (`users/{id}/messages`). */
  folderId?: string;
  changeType: string[];
  notificationUrl: string;
  lifecycleNotificationUrl?: string;
  clientState?: string;
  expiresAt: number;
}

export interface ValidationRecord {
  url: string;
  token: string;
  status: number;
  contentType: string | null;
  echoed: boolean;
}

export interface NotificationDelivery {
  url: string;
  kind: 'change' | 'lifecycle';
  subscriptionId: string;
  body: string;
  /** The endpoint's answer; 0 when it could not be reached. */
  status: number;
}

/** How the stand-in finds a mailbox and folder for a subscription's resource. */
export interface SubscriptionTargets {
  mailbox(segment: string): string;
  folderId(mailbox: string, nameOrId: string): string;
}

const subscriptionInput = z.object({
  changeType: z.string().regex(/^(created|updated|deleted)(,(created|updated|deleted))*$/, 'changeType must be created, updated or deleted, comma-separated'),
  notificationUrl: z.string(),
  lifecycleNotificationUrl: z.string().optional(),
  resource: z.string(),
  expirationDateTime: z.string(),
  clientState: z.string().optional(),
  latestSupportedTlsVersion: z.enum(['v1_0', 'v1_1', 'v1_2', 'v1_3']).optional(),
});
const renewInput = z.object({ expirationDateTime: z.string() });

/**
 * The subscriptions side of the Graph stand-in, as Graph documents change notifications through
 * webhooks (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks): POST
 * /subscriptions validates each https endpoint first (a POST of ?validationToken= that must be
 * answered 200 with the token as text/plain within 10 seconds, else 400 ValidationError), checks
 * the expiry against the resource's longest lifetime; PATCH renews, DELETE removes, a subscription
 * past its expiry is gone (404). New mail in a subscribed folder is POSTed to its notificationUrl
 * as a changeNotificationCollection; tests send lifecycle events and forged notifications.
 */
export class GraphSubscriptionsPeer {
  readonly subscriptions = new Map<string, PeerSubscription>();
  readonly validations: ValidationRecord[] = [];
  readonly deliveries: NotificationDelivery[] = [];
  /** While true, new mail sends no notification (as when Graph drops them): a `missed` event tells the app. */
  muted = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly targets: SubscriptionTargets,
    private readonly tenantId: string = randomUUID(),
  ) {}

  now(): number {
    return Date.now();
  }

  /** The subscription reaches its expiry now, as when nobody renewed it in time: Graph forgets it (404) and sends nothing more. */
  expire(id: string): void {
    const s = this.subscriptions.get(id);
    if (s) s.expiresAt = this.now();
  }

  /** The live subscriptions (an expired one is dropped when it is next looked at). */
  live(): PeerSubscription[] {
    return [...this.subscriptions.values()].filter((s) => this.current(s.id) !== undefined);
  }

  async route(method: string, parts: string[], body: Buffer, me: () => string): Promise<PeerAnswer> {
    const id = parts[1] === undefined ? undefined : decodeURIComponent(parts[1]);
    if (id === undefined && method === 'POST') return this.create(parse(body, subscriptionInput), me);
    if (id === undefined && method === 'GET') return { status: 200, body: { value: this.live().map((s) => this.json(s)) } };
    const subscription = id === undefined ? undefined : this.current(id);
    if (!subscription) throw new GraphFailure(404, 'ResourceNotFound', `The object was not found.`);
    if (parts.length === 2 && method === 'GET') return { status: 200, body: this.json(subscription) };
    if (parts.length === 2 && method === 'PATCH') {
      subscription.expiresAt = this.expiry(parse(body, renewInput).expirationDateTime);
      return { status: 200, body: this.json(subscription) };
    }
    if (parts.length === 2 && method === 'DELETE') {
      this.subscriptions.delete(subscription.id);
      return { status: 204 };
    }
    throw new GraphFailure(400, 'BadRequest', `Resource not found for the segment '${parts[2] ?? ''}'.`);
  }

  /** New mail in `folderId` of `mailbox`: each live subscription on it with changeType created gets a notification. */
  messageCreated(mailbox: string, folderId: string, messageId: string): void {
    if (this.muted) return;
    for (const s of this.live()) {
      if (s.mailbox !== mailbox || (s.folderId !== undefined && s.folderId !== folderId) || !s.changeType.includes('created')) continue;
      const resource = `Users/${mailbox}/Messages/${messageId}`;
      this.send(s, 'change', s.notificationUrl, {
        subscriptionId: s.id,
        subscriptionExpirationDateTime: new Date(s.expiresAt).toISOString(),
        changeType: 'created',
        resource,
        resourceData: { '@odata.type': '#Microsoft.Graph.Message', '@odata.id': resource, '@odata.etag': `W/"${randomBytes(6).toString('hex')}"`, id: messageId },
        clientState: s.clientState ?? null,
        tenantId: this.tenantId,
      });
    }
  }

  /** Sends a change notification for `id` as a forger would, with the clientState given. */
  forge(id: string, clientState: string | null): void {
    const s = this.subscriptions.get(id);
    if (!s) throw new Error(`no subscription ${id}`);
    this.send(s, 'change', s.notificationUrl, { subscriptionId: s.id, subscriptionExpirationDateTime: new Date(s.expiresAt).toISOString(), changeType: 'created', resource: `Users/${s.mailbox}/Messages/forged`, clientState, tenantId: this.tenantId });
  }

  /**
   * A lifecycle event (https://learn.microsoft.com/graph/change-notifications-lifecycle-events) to
   * the subscription's lifecycleNotificationUrl. subscriptionRemoved removes it first, as Graph has.
   */
  lifecycle(id: string, event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed'): void {
    const s = this.subscriptions.get(id);
    if (!s?.lifecycleNotificationUrl) throw new Error(`subscription ${id} has no lifecycleNotificationUrl`);
    if (event === 'subscriptionRemoved') this.subscriptions.delete(id);
    this.send(s, 'lifecycle', s.lifecycleNotificationUrl, { subscriptionId: s.id, subscriptionExpirationDateTime: new Date(s.expiresAt).toISOString(), tenantId: this.tenantId, clientState: s.clientState ?? null, lifecycleEvent: event });
  }

  /** Waits for every notification sent so far to be answered. */
  async settled(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  private current(id: string): PeerSubscription | undefined {
    const s = this.subscriptions.get(id);
    if (s && s.expiresAt <= this.now()) this.subscriptions.delete(id);
    return s && s.expiresAt > this.now() ? s : undefined;
  }

  private async create(input: z.output<typeof subscriptionInput>, me: () => string): Promise<PeerAnswer> {
    const target = /^\/?(?:users\/([^/]+)|me)(?:\/mailFolders(?:\/([^/]+)|\('([^']+)'\)))?\/messages$/i.exec(input.resource);
    if (!target) throw new GraphFailure(400, 'InvalidRequest', `Unsupported resource '${input.resource}'.`);
    const mailbox = target[1] === undefined ? me() : this.targets.mailbox(target[1]);
    const folder = target[2] ?? target[3];
    const folderId = folder === undefined ? undefined : this.targets.folderId(mailbox, decodeURIComponent(folder));
    if (input.clientState !== undefined && input.clientState.length > CLIENT_STATE_MAX) throw new GraphFailure(400, 'InvalidRequest', `clientState may hold at most ${CLIENT_STATE_MAX} characters.`);
    const expiresAt = this.expiry(input.expirationDateTime);
    for (const url of new Set([input.notificationUrl, ...(input.lifecycleNotificationUrl ? [input.lifecycleNotificationUrl] : [])])) await this.validate(url);
    const s: PeerSubscription = {
      id: randomUUID(),
      resource: input.resource,
      mailbox,
      ...(folderId !== undefined && { folderId }),
      changeType: input.changeType.split(','),
      notificationUrl: input.notificationUrl,
      ...(input.lifecycleNotificationUrl !== undefined && { lifecycleNotificationUrl: input.lifecycleNotificationUrl }),
      ...(input.clientState !== undefined && { clientState: input.clientState }),
      expiresAt,
    };
    this.subscriptions.set(s.id, s);
    return { status: 201, body: this.json(s) };
  }

  private expiry(text: string): number {
    const at = Date.parse(text);
    if (!Number.isFinite(at)) throw new GraphFailure(400, 'InvalidRequest', 'expirationDateTime is not a date.');
    if (at <= this.now()) throw new GraphFailure(400, 'ExtensionError', 'Subscription expiration must be in the future.');
    if (at > this.now() + MESSAGE_MAX_MINUTES * 60_000) throw new GraphFailure(400, 'ExtensionError', `Subscription expiration can only be ${MESSAGE_MAX_MINUTES} minutes in the future.`);
    return at;
  }

  /** Graph's validation request: POST ?validationToken=, the token echoed as text/plain with 200 within 10 seconds. */
  private async validate(url: string): Promise<void> {
    const failed = () => new GraphFailure(400, 'ValidationError', 'Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.');
    if (!URL.canParse(url) || new URL(url).protocol !== 'https:') throw new GraphFailure(400, 'ValidationError', 'The notificationUrl must be an https URL.');
    const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
    const target = new URL(url);
    target.searchParams.set('validationToken', token);
    const record: ValidationRecord = { url, token, status: 0, contentType: null, echoed: false };
    this.validations.push(record);
    try {
      const answer = await fetch(target, { method: 'POST', headers: { 'Content-Type': 'text/plain; charset=utf-8' }, signal: AbortSignal.timeout(VALIDATION_TIMEOUT_MS) });
      record.status = answer.status;
      record.contentType = answer.headers.get('content-type');
      record.echoed = (await answer.text()) === token;
    } catch {
      throw failed();
    }
    if (record.status !== 200 || !record.echoed || !/^text\/plain\b/i.test(record.contentType ?? '')) throw failed();
  }

  private send(s: PeerSubscription, kind: NotificationDelivery['kind'], url: string, item: Record<string, unknown>): void {
    const body = JSON.stringify({ value: [item] });
    const delivery: NotificationDelivery = { url, kind, subscriptionId: s.id, body, status: 0 };
    this.deliveries.push(delivery);
    const sent = fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json; charset=utf-8' }, body })
      .then(async (answer) => {
        delivery.status = answer.status;
        await answer.arrayBuffer();
      })
      .catch(() => undefined)
      .finally(() => this.inFlight.delete(sent));
    this.inFlight.add(sent);
  }

  private json(s: PeerSubscription): Record<string, unknown> {
    return {
      '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity',
      id: s.id,
      resource: s.resource,
      applicationId: '24d3b144-21ae-4080-943f-7067b395b913',
      changeType: s.changeType.join(','),
      clientState: s.clientState ?? null,
      notificationUrl: s.notificationUrl,
      lifecycleNotificationUrl: s.lifecycleNotificationUrl ?? null,
      expirationDateTime: new Date(s.expiresAt).toISOString(),
      creatorId: randomUUID(),
      latestSupportedTlsVersion: 'v1_2',
    };
  }
}
