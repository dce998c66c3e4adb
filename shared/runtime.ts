import { type Profile, type ProfileSet } from './config/profiles.js';
import { loadProfiles } from './profiles/load.js';
import { wholeNumberSetting } from './config/settings.js';
import { MailError } from './errors.js';
import { ProfileTokenProvider, type TokenProvider } from './identity/tokenProvider.js';
import { createLogger, type Logger } from './log.js';
import { createSecretStore } from './secrets/index.js';
import type { SecretStore } from './secrets/store.js';
import { createSender } from './transports/index.js';
import type { MailSender } from './transports/types.js';

export interface RuntimeOptions {
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  secrets?: SecretStore;
}

export interface SendLimits {
  maxBytes: number;
  maxRecipients: number;
}

/**
 * What one process shares across invocations: validated profiles, the secret store,
 * one token provider and one sender per profile, each created on first use.
 */
export class MailRuntime {
  readonly profiles: ProfileSet;
  readonly secrets: SecretStore;
  readonly logger: Logger;
  readonly env: NodeJS.ProcessEnv;
  private readonly defaultProfile?: string;
  /** SEND_MAX_BYTES and SEND_MAX_RECIPIENTS, checked at start-up like the profiles. */
  private readonly defaultSendLimits: SendLimits;
  private readonly tokenProviders = new Map<string, TokenProvider>();
  private readonly senders = new Map<string, MailSender>();

  constructor(options: RuntimeOptions = {}) {
    this.env = options.env ?? process.env;
    this.profiles = loadProfiles(this.env);
    this.defaultProfile = defaultProfileSetting(this.env, this.profiles);
    this.defaultSendLimits = {
      maxBytes: wholeNumberSetting(this.env, 'SEND_MAX_BYTES', { default: 35 * 1024 * 1024, min: 1 }),
      maxRecipients: wholeNumberSetting(this.env, 'SEND_MAX_RECIPIENTS', { default: 500, min: 1 }),
    };
    this.secrets = options.secrets ?? createSecretStore(this.env);
    this.logger = options.logger ?? createLogger();
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

  tokens(profile: Profile): TokenProvider {
    let provider = this.tokenProviders.get(profile.name);
    if (!provider) {
      provider = new ProfileTokenProvider(profile, this.secrets, { logger: this.logger });
      this.tokenProviders.set(profile.name, provider);
    }
    return provider;
  }

  sender(profile: Profile): MailSender {
    let sender = this.senders.get(profile.name);
    if (!sender) {
      sender = createSender(profile, { tokens: this.tokens(profile), logger: this.logger });
      this.senders.set(profile.name, sender);
    }
    return sender;
  }

  sendLimits(profile: Profile): SendLimits {
    return {
      maxBytes: profile.send?.maxBytes ?? this.defaultSendLimits.maxBytes,
      maxRecipients: profile.send?.maxRecipients ?? this.defaultSendLimits.maxRecipients,
    };
  }

  /**
   * The largest POST /api/send body worth reading: twice the largest message any profile accepts
   * (the limit counts attachments base64-encoded, as JSON carries them; the factor leaves room for
   * JSON escapes in text and html) plus 1 MiB for addresses and headers.
   */
  sendRequestMaxBytes(): number {
    const limits = [this.defaultSendLimits.maxBytes, ...[...this.profiles.profiles.values()].map((p) => p.send?.maxBytes ?? 0)];
    return 2 * Math.max(...limits) + 1024 * 1024;
  }

  async close(): Promise<void> {
    await Promise.all([...this.senders.values()].map((s) => s.close?.()));
    this.senders.clear();
  }
}

/**
 * DEFAULT_PROFILE must name a configured profile: otherwise every request naming none would be
 * told that a profile it never named does not exist. Empty (as local.settings.sample.json ships it) means none.
 */
function defaultProfileSetting(env: NodeJS.ProcessEnv, set: ProfileSet): string | undefined {
  const name = env.DEFAULT_PROFILE?.trim();
  if (!name) return undefined;
  if (!set.profiles.has(name)) {
    throw new MailError('ECONFIG', `DEFAULT_PROFILE names "${name}", which is not a configured profile`, {
      field: 'DEFAULT_PROFILE',
      hint: `Set DEFAULT_PROFILE to one of ${[...set.profiles.keys()].join(', ')}, or remove it.`,
    });
  }
  return name;
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
