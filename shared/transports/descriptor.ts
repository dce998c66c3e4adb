import type { Endpoints } from '../config/cloud.js';
import type { Profile } from '../config/profiles.js';
import type { ReceiveConfig, SectionSchema, SendConfig } from '../config/schema.js';
import type { TokenProvider } from '../identity/tokenProvider.js';
import type { ProxyRouter } from '../network/proxy.js';
import type { MailboxReader, MailboxSubscriptions, MailSender, TransportDeps } from './types.js';

/** The two APIs a mailbox is reached through; their resource URIs depend on the profile's cloud. */
export type Api = 'graph' | 'exchange';

/** The API's name as the Entra portal lists it under API permissions. */
export const API_NAMES = { graph: 'Microsoft Graph', exchange: 'Office 365 Exchange Online' } as const satisfies Record<Api, string>;

export function apiResource(api: Api, endpoints: Endpoints): string {
  return api === 'graph' ? endpoints.graphResource : endpoints.exchangeResource;
}

/** The scope an app-only (or refresh-token) request for the API asks for. */
export function apiScope(api: Api, endpoints: Endpoints): string {
  return `${apiResource(api, endpoints)}/.default`;
}

/** One thing the profile does through a transport, and the application permissions (roles) that allow it: any one is enough. */
export interface PermissionNeed {
  api: Api;
  purpose: string;
  anyOf: string[];
}

/** A delegated permission that consent asks a user for. */
export interface DelegatedPermission {
  api: Api;
  permission: string;
}

/** What a transport is on one side (sending or receiving): its config section, how it is built, what it needs and how it reads to people. */
interface Side<Section, Made> {
  /** Its own fields of the profile's section, beside the common ones (shared/config/schema.ts), and checks of the whole section. */
  config: SectionSchema<Section>;
  /** Builds the sender or reader; its module, and with it its SDK, is loaded here, when a profile first needs it (cold start). */
  create(profile: Profile, deps: TransportDeps): Made;
  /** Application permissions an app-only token must carry. */
  permissions(profile: Profile): PermissionNeed[];
  /** Delegated permissions consent asks for when the profile's auth.scopes names none. */
  delegated(profile: Profile): DelegatedPermission[];
  /** One line for people: how the profile sends or receives through it. */
  describe(profile: Profile): string;
}

/** What a connection probe is given: the diagnosis's own token provider, and what the token step found the tokens allow. */
export interface ProbeContext {
  tokens: TokenProvider;
  /** Where the probe's connection goes, as the sender's would. */
  proxy?: ProxyRouter;
  abortSignal?: AbortSignal;
  /** Whether a token the token step obtained carries this permission. */
  granted(permission: string): boolean;
}

/** What a passed probe found, for people, and a warning worth acting on. */
export interface ProbeFinding {
  detail: string;
  hint?: string;
}

export interface SendSide extends Side<SendConfig, MailSender> {
  /** Logs in and leaves, sending nothing: the diagnosis's send-connect step. Absent where there is no server (file). */
  probe?(profile: Profile, ctx: ProbeContext): Promise<ProbeFinding>;
}

export interface ReceiveSide extends Side<ReceiveConfig, MailboxReader> {
  /** What a connection test opened, for people: "folder Inbox of x@y over imap at host:993". */
  opened(profile: Profile): string;
  /** A transport that can notify of new mail (receive.push): its subscriptions, module loaded on first use. */
  subscriptions?(profile: Profile, deps: TransportDeps): MailboxSubscriptions;
}

/**
 * A transport describes itself in its own folder (shared/transports/<name>/index.ts); the
 * registry (shared/transports/index.ts) lists them. Nothing outside shared/transports asks
 * which transport a profile uses: it asks the profile's descriptor.
 */
export interface TransportDescriptor {
  name: string;
  /** False for a transport that talks to no server (file): auth type "none" is allowed for it. */
  remote: boolean;
  send?: SendSide;
  receive?: ReceiveSide;
}
