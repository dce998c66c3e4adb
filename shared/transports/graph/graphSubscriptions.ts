import { z } from 'zod';
import type { Profile } from '../../config/profiles.js';
import { MailError, isMailError } from '../../errors.js';
import type { MailboxSubscriptions, MailSubscription, SubscribeRequest, TransportDeps } from '../types.js';
import { graphConnection, type GraphConnection } from './graphClient.js';
import { GraphFolders } from './graphReader.js';

/**
 * Graph's longest lifetime of a subscription to Outlook messages: 10,080 minutes (under 7 days).
 * https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime
 */
export const GRAPH_MESSAGE_SUBSCRIPTION_MAX_MINUTES = 10_080;

const subscriptionAnswer = z.object({ id: z.string().min(1), resource: z.string(), expirationDateTime: z.string().refine((v) => Number.isFinite(Date.parse(v)), 'must be a date') });

/** The status of the Graph error a MailError was translated from. */
function graphStatus(error: unknown): number | undefined {
  const status = isMailError(error) ? (error.cause as { statusCode?: unknown } | undefined)?.statusCode : undefined;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Graph change notifications for new messages in the profile's folder
 * (https://learn.microsoft.com/graph/change-notifications-delivery-webhooks): POST /subscriptions
 * with changeType "created" on `users/{mailbox}/mailFolders/{id}/messages`, PATCH to renew.
 * Graph validates both URLs when it creates the subscription (it posts ?validationToken= to each
 * and wants the token back within 10 seconds). The subscription needs the permission reading needs
 * (Mail.Read), and shares the profile's Graph client.
 */
export class GraphSubscriptions implements MailboxSubscriptions {
  readonly maxLifetimeMinutes = GRAPH_MESSAGE_SUBSCRIPTION_MAX_MINUTES;
  private readonly graph: GraphConnection;
  private readonly folders: GraphFolders;

  constructor(
    private readonly profile: Profile,
    deps: TransportDeps,
  ) {
    this.graph = graphConnection(profile, deps);
    this.folders = new GraphFolders(this.graph, deps.logger);
  }

  async subscribe(request: SubscribeRequest): Promise<MailSubscription> {
    const folder = await this.folders.resolve(this.profile.receive?.folder ?? 'Inbox', { create: false, abortSignal: request.abortSignal });
    // Graph's resource paths are relative to its root; /me is the signed-in user of a delegated token.
    const resource = `${this.graph.userPath.slice(1)}/mailFolders/${encodeURIComponent(folder)}/messages`;
    const body = {
      changeType: 'created',
      notificationUrl: request.notificationUrl,
      lifecycleNotificationUrl: request.lifecycleNotificationUrl,
      resource,
      expirationDateTime: request.expiresAt.toISOString(),
      clientState: request.clientState,
      latestSupportedTlsVersion: 'v1_2',
    };
    try {
      return this.parsed(await this.graph.call('/subscriptions', { abortSignal: request.abortSignal }, (r) => r.post(body)));
    } catch (error) {
      // Graph answers 400 ValidationError when an endpoint did not echo the validation token in time.
      if (graphStatus(error) !== 400) throw error;
      throw new MailError('EREJECTED', `profile "${this.profile.name}": Graph refused the subscription: ${(error as Error).message}`, {
        profile: this.profile.name,
        field: 'NOTIFICATION_URL',
        cause: error,
        hint: 'Graph must reach NOTIFICATION_URL from the internet over https with a certificate it trusts, and the notifications functions must answer its validation request within 10 seconds.',
      });
    }
  }

  async renew(id: string, expiresAt: Date, options: { abortSignal?: AbortSignal } = {}): Promise<MailSubscription | undefined> {
    try {
      const answer = await this.graph.call(`/subscriptions/${encodeURIComponent(id)}`, options, (r) => r.patch({ expirationDateTime: expiresAt.toISOString() }));
      return this.parsed(answer);
    } catch (error) {
      // Expired or removed: Graph no longer knows it (404), and only a new one helps.
      if (graphStatus(error) === 404) return undefined;
      throw error;
    }
  }

  private parsed(answer: unknown): MailSubscription {
    const parsed = subscriptionAnswer.safeParse(answer);
    if (!parsed.success) {
      throw new MailError('EPROVIDER', `profile "${this.profile.name}": unexpected Graph subscription answer: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { profile: this.profile.name, hint: 'Check that endpoints.graph points at Microsoft Graph.' });
    }
    return { id: parsed.data.id, resource: parsed.data.resource, expiresAt: new Date(parsed.data.expirationDateTime) };
  }
}
