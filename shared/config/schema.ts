import { z } from 'zod';
import { CLOUD_NAMES, isPersonalTenant, parseHostPort } from './cloud.js';
import { proxyUrlProblem } from '../network/proxy.js';

/** Key Vault secret names: 1-127 letters, digits and dashes. The environment store maps them to settings. */
const secretName = z
  .string()
  .regex(/^[0-9a-zA-Z-]{1,127}$/, 'must be a secret name (letters, digits and dashes, at most 127)');

const email = z.email('must be an e-mail address');

const hostPort = z.string().refine((v) => parseHostPort(v) !== undefined, 'must be host:port');

const httpsUrl = z.url().refine((v) => /^https:\/\//i.test(v), 'must be an https URL');

const proxyUrl = z.string().superRefine((v, ctx) => {
  const problem = proxyUrlProblem(v, { allowPassword: false });
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * The profile's outbound proxy: its URL ("http://proxy.contoso.com:8080"), or, for a proxy that
 * wants credentials, { url: "http://user@host:port", passwordSecret } with the password in the
 * secret store. Overrides HTTPS_PROXY for this profile's connections; NO_PROXY still applies.
 */
const proxy = z.union([
  proxyUrl,
  z
    .object({ url: proxyUrl, passwordSecret: secretName.optional() })
    .strict()
    .refine((p) => p.passwordSecret === undefined || (URL.canParse(p.url) && new URL(p.url).username !== ''), { message: 'must name the user (http://user@host:port) when passwordSecret is set', path: ['url'] }),
]);

/** The signed messages go over TLS; plain http only to this machine, for development. */
const webhookUrl = z.url().refine((v) => {
  if (!URL.canParse(v)) return true; // z.url() reports it
  const url = new URL(v);
  const loopback = url.hostname === 'localhost' || url.hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(url.hostname);
  return url.protocol === 'https:' || (url.protocol === 'http:' && loopback);
}, 'must be an https URL (plain http only to localhost or 127.0.0.1, for development)');

const auth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('clientSecret'), secret: secretName }).strict(),
  z.object({ type: z.literal('certificate'), certificate: secretName }).strict(),
  z.object({ type: z.literal('managedIdentity'), clientId: z.string().min(1).optional() }).strict(),
  /**
   * The app registration (tenantId, clientId) with no secret: the Function App's managed identity
   * gets a token for the cloud's token exchange audience, which the app presents as its client
   * assertion (a federated identity credential on the app registration trusts that identity).
   */
  z
    .object({
      type: z.literal('federated'),
      /** The client id of the user-assigned identity the credential trusts; absent: the system-assigned one. */
      managedIdentityClientId: z.string().min(1).optional(),
    })
    .strict(),
  /**
   * A user's delegated permissions: a refresh token from the consent flow (GET /api/connect/{profile}),
   * kept in the secret store and rewritten whenever Entra rotates it.
   */
  z
    .object({
      type: z.literal('delegated'),
      /** The client secret of a web (confidential) app; absent for a public client (personal accounts, "Allow public client flows"). */
      secret: secretName.optional(),
      /** The secret the refresh token lives in; the consent flow writes it. */
      refreshToken: secretName,
      /** The account that signs in at consent, when it is not the mailbox itself (a shared mailbox is reached through a user). Default: the mailbox. */
      user: email.optional(),
      /** Delegated permissions to consent to, as full scope URIs; default: what send.via and receive.via need. */
      scopes: z.array(z.string().regex(/^https:\/\/[^/\s]+\/\S+$/, 'must be a full scope URI such as https://outlook.office365.com/SMTP.Send')).min(1).optional(),
    })
    .strict(),
  /** For the local file transport only: there is nobody to authenticate to. */
  z.object({ type: z.literal('none') }).strict(),
]);

/**
 * What every send section has, whatever its transport; a transport adds its own fields
 * (shared/transports/<name>/: the SMTP port's security, the file transport's folder).
 */
export const sendCommon = {
  /** Addresses the API may put in `from`; `*@domain` allows a whole domain. Default: the mailbox. */
  allowedFrom: z.array(z.string().refine((v) => email.safeParse(v).success || /^\*@[^@\s]+$/.test(v), 'must be an e-mail address or *@domain')).optional(),
  saveToSentItems: z.boolean().default(true),
  /**
   * What a send whose outcome is unknown (a crash or a lost answer after the whole message went)
   * becomes where the sender cannot look for it in the mailbox's sent mail: "atMostOnce" marks it
   * `unknown` and never sends it again; "atLeastOnce" sends it again with the same Message-ID.
   */
  unknownOutcome: z.enum(['atMostOnce', 'atLeastOnce']).default('atMostOnce'),
  /** Upper bound on the composed message size in bytes (default: app setting SEND_MAX_BYTES). */
  maxBytes: z.number().int().positive().optional(),
  /** Upper bound on to+cc+bcc (default: app setting SEND_MAX_RECIPIENTS). */
  maxRecipients: z.number().int().positive().optional(),
  /** Upper bound on attachments (default: app setting SEND_MAX_ATTACHMENTS). */
  maxAttachments: z.number().int().nonnegative().optional(),
  /** Queued sends waiting or being sent at most (Pandora ITSM's "Max. pending emails"): past it POST /api/send answers 503 EBACKLOG with Retry-After and stores nothing. */
  maxPending: z.number().int().min(1).max(1_000_000).default(10_000),
  /** Queued sends of this profile one instance sends at once at most (its share of the host's queue batch, "Max. emails sent per execution"); the rest wait on the queue a few seconds. */
  maxPerRun: z.number().int().min(1).max(1000).optional(),
  /** Messages per minute from this mailbox, across every instance (Exchange Online: 30). */
  ratePerMinute: z.number().int().min(1).max(6000).default(30),
  /** Recipients (to + cc + bcc) per rolling 24 hours from this mailbox, across every instance (Exchange Online: 10,000). */
  recipientsPerDay: z.number().int().min(1).max(1_000_000).default(10_000),
};

/**
 * The Graph limits of the profile's app and mailbox that every instance keeps together
 * (shared/governor). Graph's own are the maximum: 4 concurrent requests, 10,000 per 10 minutes
 * (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits); lower ones leave
 * room for another app on the same mailbox. `governor: false` for a mailbox nothing else uses.
 */
const graphLimits = z
  .object({
    governor: z.boolean().default(true),
    maxConcurrent: z.number().int().min(1).max(4).default(4),
    requestsPer10Minutes: z.number().int().min(1).max(10_000).default(10_000),
  })
  .strict();

const filters = z
  .object({
    mode: z.enum(['allow', 'ignore']).default('ignore'),
    emails: z.array(z.string().min(1)).default([]),
    domains: z.array(z.string().min(1)).default([]),
    keywords: z.array(z.string().min(1)).default([]),
    unreadOnly: z.boolean().default(false),
    hasAttachments: z.boolean().optional(),
    minImportance: z.enum(['low', 'normal', 'high']).optional(),
    maxSizeBytes: z.number().int().positive().optional(),
    /** Only messages whose sender's domain the receiving organisation authenticated (authentication.verdict "pass"). */
    requireAuthenticated: z.boolean().default(false),
  })
  .strict();

const deliver = z.union(
  [
    z.object({ webhook: z.object({ url: webhookUrl, signingSecret: secretName }).strict() }).strict(),
    z.object({ queue: z.object({ name: z.string().regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/, 'must be a storage queue name') }).strict() }).strict(),
  ],
  { error: 'must be {"webhook": {"url", "signingSecret"}} or {"queue": {"name"}}' },
);

/** What every receive section has, whatever its transport. */
export const receiveCommon = {
  folder: z.string().min(1).default('Inbox'),
  afterFetch: z.enum(['markRead', 'move', 'delete', 'none']).default('none'),
  moveTo: z.string().min(1).optional(),
  filters: filters.optional(),
  deliver,
  tags: z.record(z.string(), z.string()).default({}),
  /** Messages fetched per poll at most; the rest wait for the next poll. */
  batchSize: z.number().int().positive().max(1000).default(100),
  /** The authserv-ids whose Authentication-Results count; empty: the topmost header (Exchange Online's). */
  trustedAuthservIds: z.array(z.string().regex(/^[\x21-\x3a\x3c-\x7e]{1,255}$/, 'must be an authserv-id (a host name)')).default([]),
  /** Attachments of one message stored as blobs at most; the rest are listed with `omitted` (0-250). */
  maxAttachmentBlobs: z.number().int().min(0).max(250).default(25),
  /** Days a copy of each delivered message is kept for redelivery on demand (POST /api/profiles/{name}/redeliver); 0: none is kept. */
  retainDays: z.number().int().min(0).max(365).default(7),
  /** Poll when the provider says mail arrived (Graph change notifications), not only on the timer: only for transports that can (TransportSections.push). */
  push: z.boolean().optional(),
};

type Shape = Record<string, z.ZodType>;

/** A send or receive section as a transport describes it: its own fields, and checks that need the whole section. */
export interface SectionSchema<Section> {
  fields: Shape;
  check?(section: Section, issue: (path: string[], message: string) => void): void;
}

/** The transports the profiles document may name, as the registry in shared/transports describes them. */
export interface TransportSections {
  send: ReadonlyMap<string, SectionSchema<SendConfig>>;
  receive: ReadonlyMap<string, SectionSchema<ReceiveConfig>>;
  /** Transports that talk to a server, and so need an identity (every one but file). */
  remote: ReadonlySet<string>;
  /** Receive transports that can notify of new mail (receive.push). */
  push: ReadonlySet<string>;
}

/** A section whose `via` names one of `transports`: the common fields plus that transport's own, nothing else. */
function section<Section>(kind: string, common: Shape, transports: ReadonlyMap<string, SectionSchema<Section>>): z.ZodType {
  const names = [...transports.keys()];
  const options = names.map((via) => z.object({ ...common, ...transports.get(via)!.fields, via: z.literal(via) }).strict());
  return z.discriminatedUnion('via', options as unknown as [z.ZodObject, ...z.ZodObject[]], {
    error: (issue) => (issue.code === 'invalid_union' ? `must name a ${kind} transport: ${names.map((n) => `"${n}"`).join(', ')}` : undefined),
  });
}

const profileCore = {
  mailbox: email,
  // It becomes a path segment of the authority URL: the characters Entra tenant ids and domains have, as @azure/identity checks them.
  tenantId: z.string().regex(/^[0-9A-Za-z.-]{1,256}$/, 'must be a tenant GUID or a domain (letters, digits, dots, dashes)').optional(),
  clientId: z.string().min(1).optional(),
  auth,
  cloud: z.enum(CLOUD_NAMES as [string, ...string[]]).default('public'),
  proxy: proxy.optional(),
  graph: graphLimits.default({ governor: true, maxConcurrent: 4, requestsPer10Minutes: 10_000 }),
  endpoints: z
    .object({ authority: httpsUrl.optional(), graph: httpsUrl.optional(), smtp: hostPort.optional(), imap: hostPort.optional(), pop3: hostPort.optional() })
    .strict()
    .default({}),
};

const profileCoreSchema = z.object(profileCore);

/** The schema of one profile, for the transports the registry holds. */
export function profileSchema(transports: TransportSections): z.ZodType<ParsedProfile> {
  return z
    .object({
      ...profileCore,
      send: section('send', sendCommon, transports.send).optional(),
      receive: section('receive', receiveCommon, transports.receive)
        .refine((r) => (r as ReceiveConfig).afterFetch !== 'move' || (r as ReceiveConfig).moveTo !== undefined, { message: 'is required when afterFetch is "move"', path: ['moveTo'] })
        .optional(),
    })
    .strict()
    .superRefine((raw, ctx) => {
      const p = raw as ParsedProfile;
      const needsIdentity = p.auth.type === 'clientSecret' || p.auth.type === 'certificate' || p.auth.type === 'federated' || p.auth.type === 'delegated';
      if (needsIdentity && !p.tenantId) ctx.addIssue({ code: 'custom', path: ['tenantId'], message: `is required for auth type ${p.auth.type}` });
      if (needsIdentity && !p.clientId) ctx.addIssue({ code: 'custom', path: ['clientId'], message: `is required for auth type ${p.auth.type}` });
      // Personal accounts have no tenant to grant an app anything: only a signed-in user's consent.
      if (isPersonalTenant(p.tenantId) && p.auth.type !== 'delegated') {
        ctx.addIssue({ code: 'custom', path: ['auth', 'type'], message: `"${p.auth.type}" cannot be used with tenantId "consumers" (personal Microsoft accounts have no app-only access): use "delegated"` });
      }
      if (isPersonalTenant(p.tenantId) && p.cloud !== 'public') ctx.addIssue({ code: 'custom', path: ['cloud'], message: 'personal Microsoft accounts (tenantId "consumers") exist in the public cloud only' });
      const remote = [p.send?.via, p.receive?.via].some((via) => via !== undefined && transports.remote.has(via));
      if (p.auth.type === 'none' && remote) ctx.addIssue({ code: 'custom', path: ['auth', 'type'], message: '"none" is only for the file transport' });
      if (!p.send && !p.receive) ctx.addIssue({ code: 'custom', path: ['send'], message: 'a profile needs a send or a receive section' });
      const issue = (where: string) => (path: string[], message: string) => ctx.addIssue({ code: 'custom', path: [where, ...path], message });
      if (p.send) transports.send.get(p.send.via)?.check?.(p.send, issue('send'));
      if (p.receive) transports.receive.get(p.receive.via)?.check?.(p.receive, issue('receive'));
      if (p.receive?.push === true && !transports.push.has(p.receive.via)) {
        issue('receive')(['push'], `is only for ${[...transports.push].map((t) => `receive.via "${t}"`).join(', ')} (${p.receive.via} is polled on the timer)`);
      }
    }) as unknown as z.ZodType<ParsedProfile>;
}
const NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * An app allowed to use some profiles: one that sends an Entra access token for this app's API
 * (its app id is the token's azp/appid), or one that sends a key kept in the secret store.
 */
export const callerSchema = z
  .object({
    entraAppId: z.string().regex(/^[0-9a-fA-F-]{36}$/, 'must be the application (client) id, a GUID').optional(),
    keySecret: secretName.optional(),
    /** App roles its tokens must all carry (Entra callers). */
    roles: z.array(z.string().min(1)).min(1).optional(),
    profiles: z.array(z.string().regex(NAME, 'must be a profile name')).default([]),
    /** Narrows the profiles' own allowedFrom for this caller. */
    allowedFrom: z.array(z.string().refine((v) => email.safeParse(v).success || /^\*@[^@\s]+$/.test(v), 'must be an e-mail address or *@domain')).optional(),
    /** May use every profile and the admin functions (profiles, test, poll, connect, health per profile). */
    admin: z.boolean().default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.entraAppId === undefined) === (c.keySecret === undefined)) ctx.addIssue({ code: 'custom', path: ['entraAppId'], message: 'a caller has exactly one of entraAppId and keySecret' });
    if (c.roles && c.keySecret !== undefined) ctx.addIssue({ code: 'custom', path: ['roles'], message: 'roles apply to Entra callers only' });
  });

export type CallerConfig = z.output<typeof callerSchema>;

export const profilesDocumentSchema = z.object({ callers: z.record(z.string().regex(NAME), z.unknown()).optional(), profiles: z.record(z.string().regex(NAME), z.unknown()) }).strict();

/** The fields a transport adds to its section, typed by the transport itself (see shared/transports/<name>/). */
type TransportFields = { readonly [field: string]: unknown };
export type SendConfig = z.output<z.ZodObject<typeof sendCommon>> & { via: string } & TransportFields;
export type ReceiveConfig = z.output<z.ZodObject<typeof receiveCommon>> & { via: string } & TransportFields;
export type ParsedProfile = z.output<typeof profileCoreSchema> & { send?: SendConfig; receive?: ReceiveConfig };
export type AuthConfig = ParsedProfile['auth'];
export type DelegatedAuthConfig = Extract<AuthConfig, { type: 'delegated' }>;
export type FilterConfig = z.output<typeof filters>;
