import { z } from 'zod';
import { CLOUD_NAMES, parseHostPort } from './cloud.js';

/** Key Vault secret names: 1-127 letters, digits and dashes. The environment store maps them to settings. */
const secretName = z
  .string()
  .regex(/^[0-9a-zA-Z-]{1,127}$/, 'must be a secret name (letters, digits and dashes, at most 127)');

const email = z.email('must be an e-mail address');

const hostPort = z.string().refine((v) => parseHostPort(v) !== undefined, 'must be host:port');

const httpsUrl = z.url().refine((v) => /^https:\/\//i.test(v), 'must be an https URL');

const auth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('clientSecret'), secret: secretName }).strict(),
  z.object({ type: z.literal('certificate'), certificate: secretName }).strict(),
  z.object({ type: z.literal('managedIdentity'), clientId: z.string().min(1).optional() }).strict(),
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
      /** Delegated permissions to consent to, as full scope URIs; default: what send.via and receive.via need. */
      scopes: z.array(z.string().regex(/^https:\/\/[^/\s]+\/\S+$/, 'must be a full scope URI such as https://outlook.office365.com/SMTP.Send')).min(1).optional(),
    })
    .strict(),
  /** For the local file transport only: there is nobody to authenticate to. */
  z.object({ type: z.literal('none') }).strict(),
]);

const send = z
  .object({
    via: z.enum(['graph', 'smtp', 'file']),
    /** Addresses the API may put in `from`; `*@domain` allows a whole domain. Default: the mailbox. */
    allowedFrom: z.array(z.string().refine((v) => email.safeParse(v).success || /^\*@[^@\s]+$/.test(v), 'must be an e-mail address or *@domain')).optional(),
    saveToSentItems: z.boolean().default(true),
    /** file transport: the folder .eml files are written to (default <MAIL_DIR>/outbox). */
    folder: z.string().min(1).optional(),
    /** Upper bound on the composed message size in bytes (default: app setting SEND_MAX_BYTES). */
    maxBytes: z.number().int().positive().optional(),
    /** Upper bound on to+cc+bcc (default: app setting SEND_MAX_RECIPIENTS). */
    maxRecipients: z.number().int().positive().optional(),
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
  })
  .strict();

const deliver = z.union(
  [
    z.object({ webhook: z.object({ url: z.url(), signingSecret: secretName }).strict() }).strict(),
    z.object({ queue: z.object({ name: z.string().regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/, 'must be a storage queue name') }).strict() }).strict(),
  ],
  { error: 'must be {"webhook": {"url", "signingSecret"}} or {"queue": {"name"}}' },
);

const receive = z
  .object({
    via: z.enum(['graph', 'imap', 'pop3', 'file']),
    folder: z.string().min(1).default('Inbox'),
    afterFetch: z.enum(['markRead', 'move', 'delete', 'none']).default('none'),
    moveTo: z.string().min(1).optional(),
    filters: filters.optional(),
    deliver,
    tags: z.record(z.string(), z.string()).default({}),
    /** Messages fetched per poll at most; the rest wait for the next poll. */
    batchSize: z.number().int().positive().max(1000).default(100),
  })
  .strict()
  .refine((r) => r.afterFetch !== 'move' || r.moveTo !== undefined, {
    message: 'is required when afterFetch is "move"',
    path: ['moveTo'],
  });

export const profileSchema = z
  .object({
    mailbox: email,
    // It becomes a path segment of the authority URL: the characters Entra tenant ids and domains have, as @azure/identity checks them.
    tenantId: z.string().regex(/^[0-9A-Za-z.-]{1,256}$/, 'must be a tenant GUID or a domain (letters, digits, dots, dashes)').optional(),
    clientId: z.string().min(1).optional(),
    auth,
    send: send.optional(),
    receive: receive.optional(),
    cloud: z.enum(CLOUD_NAMES as [string, ...string[]]).default('public'),
    endpoints: z
      .object({ authority: httpsUrl.optional(), graph: httpsUrl.optional(), smtp: hostPort.optional(), imap: hostPort.optional(), pop3: hostPort.optional() })
      .strict()
      .default({}),
  })
  .strict()
  .superRefine((p, ctx) => {
    const needsIdentity = p.auth.type === 'clientSecret' || p.auth.type === 'certificate' || p.auth.type === 'delegated';
    if (needsIdentity && !p.tenantId) ctx.addIssue({ code: 'custom', path: ['tenantId'], message: `is required for auth type ${p.auth.type}` });
    if (needsIdentity && !p.clientId) ctx.addIssue({ code: 'custom', path: ['clientId'], message: `is required for auth type ${p.auth.type}` });
    const remote = [p.send?.via, p.receive?.via].some((via) => via !== undefined && via !== 'file');
    if (p.auth.type === 'none' && remote) ctx.addIssue({ code: 'custom', path: ['auth', 'type'], message: '"none" is only for the file transport' });
    if (!p.send && !p.receive) ctx.addIssue({ code: 'custom', path: ['send'], message: 'a profile needs a send or a receive section' });
    // POP3 has one folder and no flags (RFC 1939): say so at start-up rather than at the first poll.
    if (p.receive?.via === 'pop3') {
      if (p.receive.afterFetch === 'markRead' || p.receive.afterFetch === 'move') ctx.addIssue({ code: 'custom', path: ['receive', 'afterFetch'], message: `"${p.receive.afterFetch}" is not possible over POP3: use "delete" or "none", or receive via imap or graph` });
      if (p.receive.folder.toUpperCase() !== 'INBOX') ctx.addIssue({ code: 'custom', path: ['receive', 'folder'], message: 'POP3 reads only the inbox: use "Inbox", or receive via imap or graph' });
      if (p.receive.filters?.unreadOnly) ctx.addIssue({ code: 'custom', path: ['receive', 'filters', 'unreadOnly'], message: 'POP3 has no read flags: remove unreadOnly, or receive via imap or graph' });
    }
  });

export const profilesDocumentSchema = z.object({ profiles: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), z.unknown()) }).strict();

export type ProfileInput = z.input<typeof profileSchema>;
export type ParsedProfile = z.output<typeof profileSchema>;
export type AuthConfig = ParsedProfile['auth'];
export type DelegatedAuthConfig = Extract<AuthConfig, { type: 'delegated' }>;
export type SendConfig = NonNullable<ParsedProfile['send']>;
export type ReceiveConfig = NonNullable<ParsedProfile['receive']>;
export type FilterConfig = z.output<typeof filters>;
