import type { Profile, ProfileSet } from './config/profiles.js';
import { loadProfiles } from './profiles/load.js';
import { appProxyRouter, parseSettings, type AppSettings } from './config/settings.js';
import { authorityOptions } from './config/cloud.js';
import { MailError } from './errors.js';
import { MailboxGovernor } from './governor/index.js';
import { CredentialExpiryWatch } from './identity/credentialExpiry.js';
import { ProfileTokenProvider, type TokenProvider } from './identity/tokenProvider.js';
import { createLogger, type Logger } from './log.js';
import { ProxyRouter } from './network/proxy.js';
import { registerSensitive } from './redact.js';
import { createSecretStore } from './secrets/index.js';
import type { SecretStore } from './secrets/store.js';
import { createSink } from './sinks/index.js';
import type { MessageSink } from './sinks/types.js';
import { MailState } from './state/index.js';
import { createTelemetry, processTelemetry, type Telemetry } from './telemetry/index.js';
import { telemetrySecrets, telemetrySettings } from './telemetry/settings.js';
import { createReader, createSender, createSubscriptions } from './transports/index.js';
import type { MailboxReader, MailboxSubscriptions, MailSender, ProfileResources, TransportDeps } from './transports/types.js';

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  secrets?: SecretStore;
  /** Where spans and metrics go; default: what the env's OTEL_* and APPLICATIONINSIGHTS_* settings say (process.env: the process-wide telemetry). */
  telemetry?: Telemetry;
  /** The state stores, shared with a test that looks into them; default: those of AzureWebJobsStorage. */
  state?: MailState;
}

export interface SendLimits {
  maxBytes: number;
  maxRecipients: number;
  maxAttachments: number;
  maxHeaders: number;
  maxHeaderBytes: number;
}

/** What the runtime keeps for one profile; each part made on first use. */
class ProfileScope implements ProfileResources {
  tokens?: TokenProvider;
  proxy?: ProxyRouter;
  sender?: MailSender;
  reader?: MailboxReader;
  subscriptions?: MailboxSubscriptions;
  sink?: MessageSink;
  private readonly shared = new Map<string, unknown>();

  once<T>(key: string, create: () => T): T {
    if (!this.shared.has(key)) this.shared.set(key, create());
    return this.shared.get(key) as T;
  }

  async close(): Promise<void> {
    const closable = [this.sender, ...this.shared.values()].filter((r): r is { close(): Promise<void> | void } => typeof (r as { close?: unknown } | undefined)?.close === 'function');
    await Promise.all(closable.map((r) => r.close()));
  }
}

type ReceivingProfile = Profile & { receive: NonNullable<Profile['receive']> };

/**
 * What one process shares across invocations, and the one owner of every per-profile and
 * per-process resource: validated profiles and app settings, the secret store, the state
 * stores, and per profile a token provider, a sender, a reader, a sink and the clients they
 * share, each created on first use. `close()` releases them all.
 */
export class MailRuntime {
  readonly profiles: ProfileSet;
  readonly settings: AppSettings;
  readonly secrets: SecretStore;
  readonly state: MailState;
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  /** When each profile's client secret or certificate expires, as last read; warns in the log before. The accessor for a days-left metric. */
  readonly credentialExpiry: CredentialExpiryWatch;
  /** Spans and metrics (shared/telemetry): nothing, and nothing loaded, unless an exporter is configured. */
  readonly telemetry: Telemetry;
  /**
   * The mailboxes' Graph and send limits kept across instances in the state's storage account
   * (shared/governor); undefined without one (a CLI send with no AzureWebJobsStorage: one process, nothing to share).
   */
  readonly governor?: MailboxGovernor;
  /** Whether close() stops the telemetry too: not the process-wide one, which the host integration shares. */
  private readonly ownsTelemetry: boolean;
  private readonly defaultProfile?: string;
  private readonly scopes = new Map<string, ProfileScope>();
  private readonly process = new ProfileScope();

  constructor(options: RuntimeOptions = {}) {
    this.env = options.env ?? process.env;
    this.profiles = loadProfiles(this.env);
    this.settings = parseSettings(this.env);
    registerSettingSecrets(this.env);
    this.defaultProfile = defaultProfileSetting(this.settings, this.profiles);
    checkCallerSettings(this.settings, this.profiles);
    checkPushSettings(this.settings, this.profiles);
    this.secrets = options.secrets ?? createSecretStore(this.env, this.settings);
    // The storage account is the app's, not a profile's: HTTPS_PROXY and NO_PROXY decide.
    this.state = options.state ?? new MailState(this.settings.storage, {
      clientOptions: { proxy: appProxyRouter(this.settings), ...(this.settings.azureAuthorityHost !== undefined && { authority: authorityOptions(this.settings.azureAuthorityHost) }) },
    });
    this.logger = options.logger ?? createLogger();
    this.credentialExpiry = new CredentialExpiryWatch({ warningDays: this.settings.credentialExpiryWarningDays, logger: this.logger });
    for (const secret of telemetrySecrets(telemetrySettings(this.env))) registerSensitive(secret);
    this.ownsTelemetry = options.telemetry === undefined && this.env !== process.env;
    this.telemetry = options.telemetry ?? (this.ownsTelemetry ? createTelemetry(this.env) : processTelemetry());
    if (options.state !== undefined || this.settings.storage !== undefined) {
      this.governor = new MailboxGovernor(() => this.state.account, { telemetry: this.telemetry, logger: this.logger });
    }
    this.telemetry.observe('mail.credential.days_left', () =>
      this.credentialExpiry.snapshot().flatMap((e) => (e.daysLeft === null ? [] : [{ value: e.daysLeft, attributes: { 'mail.profile': e.profile, 'mail.credential': e.credential } }])));
  }

  /** The named profile, or the only one when exactly one is configured (or DEFAULT_PROFILE). */
  profile(name: string | undefined): Profile {
    const wanted = name ?? this.defaultProfile ?? (this.profiles.profiles.size === 1 ? [...this.profiles.profiles.keys()][0] : undefined);
    if (wanted === undefined) {
      throw new MailError('EINPUT', 'profile is required when more than one profile is configured', {
        field: 'profile',
        hint: `Name one of: ${[...this.profiles.profiles.keys()].join(', ')}.`,
      });
    }
    const profile = this.profiles.profiles.get(wanted);
    if (!profile) {
      throw new MailError('EPROFILE_UNKNOWN', `no profile named "${wanted}"`, {
        field: 'profile',
        hint: `Configured profiles: ${[...this.profiles.profiles.keys()].join(', ')}.`,
      });
    }
    return profile;
  }

  /** A per-process resource another part keeps here (the caller token verifier), made on first use, closed with the rest. */
  once<T>(key: string, create: () => T): T {
    return this.process.once(key, create);
  }

  private scope(profile: Profile): ProfileScope {
    let scope = this.scopes.get(profile.name);
    if (!scope) {
      scope = new ProfileScope();
      this.scopes.set(profile.name, scope);
    }
    return scope;
  }

  /**
   * Where the profile's connections go (token requests, Graph, SMTP, IMAP, POP3): through its own
   * proxy, else HTTPS_PROXY, but directly to the hosts NO_PROXY names. The proxy's password is
   * read from the secret store when the first connection needs it.
   */
  proxy(profile: Profile): ProxyRouter {
    const scope = this.scope(profile);
    scope.proxy ??= new ProxyRouter({
      server: profile.proxy ?? this.settings.httpsProxy,
      noProxy: this.settings.noProxy,
      direct: this.settings.managedIdentityEndpoints,
      readSecret: (name) => this.secrets.getSecret(name),
      profile: profile.name,
    });
    return scope.proxy;
  }

  tokens(profile: Profile): TokenProvider {
    const scope = this.scope(profile);
    scope.tokens ??= new ProfileTokenProvider(profile, this.secrets, { logger: this.logger, expiry: this.credentialExpiry, proxy: this.proxy(profile), defaultManagedIdentityClientId: this.settings.azureClientId, telemetry: this.telemetry, requestTimeoutMs: this.settings.tokenTimeoutSeconds * 1000 });
    return scope.tokens;
  }

  private transportDeps(profile: Profile): TransportDeps {
    const governor = this.governor?.graph(profile);
    return { tokens: this.tokens(profile), logger: this.logger, resources: this.scope(profile), proxy: this.proxy(profile), telemetry: this.telemetry, sentItemsLookupSeconds: this.settings.sentItemsLookupSeconds, ...(governor && { governor }) };
  }

  sender(profile: Profile): MailSender {
    const scope = this.scope(profile);
    scope.sender ??= createSender(profile, this.transportDeps(profile));
    return scope.sender;
  }

  reader(profile: ReceivingProfile): MailboxReader {
    const scope = this.scope(profile);
    scope.reader ??= createReader(profile, this.transportDeps(profile));
    return scope.reader;
  }

  /** The provider's subscriptions of a push profile (receive.push). */
  subscriptions(profile: ReceivingProfile): MailboxSubscriptions {
    const scope = this.scope(profile);
    scope.subscriptions ??= createSubscriptions(profile, this.transportDeps(profile));
    return scope.subscriptions;
  }

  sink(profile: ReceivingProfile): MessageSink {
    const scope = this.scope(profile);
    scope.sink ??= createSink(profile, { secrets: this.secrets, settings: this.settings, state: this.state, proxy: this.proxy(profile) });
    return scope.sink;
  }

  sendLimits(profile: Profile): SendLimits {
    return {
      maxBytes: profile.send?.maxBytes ?? this.settings.sendMaxBytes,
      maxRecipients: profile.send?.maxRecipients ?? this.settings.sendMaxRecipients,
      maxAttachments: profile.send?.maxAttachments ?? this.settings.sendMaxAttachments,
      maxHeaders: this.settings.sendMaxHeaders,
      maxHeaderBytes: this.settings.sendMaxHeaderBytes,
    };
  }

  /**
   * The largest POST /api/send body worth reading: twice the largest message any profile accepts
   * (the limit counts attachments base64-encoded, as JSON carries them; the factor leaves room for
   * JSON escapes in text and html) plus 1 MiB for addresses and headers.
   */
  sendRequestMaxBytes(): number {
    const limits = [this.settings.sendMaxBytes, ...[...this.profiles.profiles.values()].map((p) => p.send?.maxBytes ?? 0)];
    return 2 * Math.max(...limits) + 1024 * 1024;
  }

  /** Closes every sender's pool and shared client of every profile; the next use makes them anew. */
  async close(): Promise<void> {
    const scopes = [...this.scopes.values(), this.process];
    this.scopes.clear();
    await Promise.all(scopes.map((s) => s.close()));
    await this.governor?.close();
    await (this.ownsTelemetry ? this.telemetry.shutdown() : this.telemetry.flush());
  }
}

/**
 * DEFAULT_PROFILE must name a configured profile: otherwise every request naming none would be
 * told that a profile it never named does not exist. Empty (as local.settings.sample.json ships it) means none.
 */
function defaultProfileSetting(settings: AppSettings, set: ProfileSet): string | undefined {
  const name = settings.defaultProfile;
  if (!name) return undefined;
  if (!set.profiles.has(name)) {
    throw new MailError('ECONFIG', `DEFAULT_PROFILE names "${name}", which is not a configured profile`, {
      field: 'DEFAULT_PROFILE',
      hint: `Set DEFAULT_PROFILE to one of ${[...set.profiles.keys()].join(', ')}, or remove it.`,
    });
  }
  return name;
}

/**
 * App settings that are secrets, registered when the runtime starts so that no log or answer
 * can carry them even though no secret store read them: the storage account key (and a SAS) in
 * AzureWebJobsStorage (and the AzureWebJobsStorage__clientSecret of identity-based storage), OAUTH_STATE_KEY, and the AZURE_CLIENT_SECRET DefaultAzureCredential may use.
 */
function registerSettingSecrets(env: NodeJS.ProcessEnv): void {
  for (const part of (env.AzureWebJobsStorage ?? '').split(';')) {
    const [name, ...rest] = part.split('=');
    if (/^(AccountKey|SharedAccessSignature)$/i.test(name?.trim() ?? '')) registerSensitive(rest.join('=').trim());
  }
  registerSensitive(env.AzureWebJobsStorage__clientSecret);
  registerSensitive(env.OAUTH_STATE_KEY);
  registerSensitive(env.AZURE_CLIENT_SECRET);
}

/** An Entra caller's tokens can be checked only against a tenant and an audience: both are required once one is configured. */
function checkCallerSettings(settings: AppSettings, set: ProfileSet): void {
  const entra = [...set.callers.values()].find((c) => c.entraAppId !== undefined);
  if (!entra) return;
  for (const [field, value] of [['API_TENANT_ID', settings.apiTenantId], ['API_AUDIENCE', settings.apiAudience]] as const) {
    if (value === undefined) {
      throw new MailError('ECONFIG', `caller "${entra.name}" presents Entra tokens, but ${field} is not set`, {
        field,
        hint: 'Set API_TENANT_ID to the tenant of this app\'s registration and API_AUDIENCE to the application ID URI of its exposed API (the aud of the callers\' tokens).',
      });
    }
  }
}

/** Graph posts notifications to a public https URL: a push profile cannot work without one. */
function checkPushSettings(settings: AppSettings, set: ProfileSet): void {
  const push = [...set.profiles.values()].find((p) => p.receive?.push === true);
  if (push === undefined) return;
  const url = settings.notificationUrl === undefined ? undefined : new URL(settings.notificationUrl);
  if (url !== undefined && (url.search !== '' || url.hash !== '')) {
    throw new MailError('ECONFIG', 'NOTIFICATION_URL must be a base URL without a query or fragment', { field: 'NOTIFICATION_URL', profile: push.name, hint: 'Set NOTIFICATION_URL to https://<app>.azurewebsites.net (the app appends /api/notifications/graph): the notification functions need no key.' });
  }
  if (url !== undefined) return;
  throw new MailError('ECONFIG', `profile "${push.name}" receives by push (receive.push), but NOTIFICATION_URL is not set`, {
    field: 'NOTIFICATION_URL',
    profile: push.name,
    hint: 'Set NOTIFICATION_URL to the app\'s public https base URL (https://<app>.azurewebsites.net), where Graph posts change notifications, or remove receive.push.',
  });
}

let shared: MailRuntime | undefined;

/** The process-wide runtime; profiles are validated the first time it is asked for. */
export function getRuntime(): MailRuntime {
  shared ??= new MailRuntime();
  return shared;
}

/** Replaces the process-wide runtime (tests, CLI). */
export function setRuntime(runtime: MailRuntime | undefined): void {
  shared = runtime;
}
