import { performance } from 'node:perf_hooks';
import { z } from 'zod';
import type { Profile } from '../config/profiles.js';
import { isMailError, type ErrorCode } from '../errors.js';
import { credentialExpiryOf, expiringCredentialOf, readWithProperties, type CredentialExpiry } from '../identity/credentialExpiry.js';
import { ProfileTokenProvider, type TokenProvider } from '../identity/tokenProvider.js';
import { errorDetail, type Logger } from '../log.js';
import { redactValue } from '../redact.js';
import type { MailRuntime } from '../runtime.js';
import { sendMail } from '../send/sendMail.js';
import type { ProbeFinding } from '../transports/descriptor.js';
import { receiveTransport, sendTransport, transportSides } from '../transports/index.js';
import { inspectCertificatePem } from './certificate.js';
import { checkPermissions, readTokenClaims, scopesNeeded, type PermissionCheck } from './permissions.js';

export type DiagnosisStepName = 'config' | 'secret' | 'token' | 'send-connect' | 'receive-connect' | 'send-test';

export interface DiagnosisStep {
  step: DiagnosisStepName;
  ok: boolean;
  durationMs: number;
  /** What was checked and found, for people. Never a secret or a token. */
  detail?: string;
  /** The MailError code of a failed step. */
  code?: ErrorCode;
  /** The provider's own code: SMTP enhanced status, AADSTS number, Graph error code. */
  providerCode?: string;
  /** What to do: on a failed step the fix, on a passed one a warning. */
  hint?: string;
}

export interface DiagnosisReport {
  profile: string;
  ok: boolean;
  /** In order; the first failed step is the last one. */
  steps: DiagnosisStep[];
  /** When the profile's client secret or certificate expires, as the secret step read it (absent: nothing that expires, or the step did not get that far). */
  credential?: CredentialExpiry;
}

/** The optional body of POST /api/profiles/{name}/test, and the CLI's --send-to. */
export const diagnoseRequestSchema = z.object({ sendTo: z.email('must be an e-mail address').optional() }).strict();

/** The body is one optional address: anything near this size is not a diagnosis request. */
export const DIAGNOSIS_REQUEST_MAX_BYTES = 64 * 1024;

/** Bounds a whole diagnosis: a host that never answers must not hold an admin's browser for minutes. */
export const DIAGNOSIS_TIMEOUT_MS = 60_000;

export interface DiagnoseOptions {
  abortSignal?: AbortSignal;
  /** Also send a short test message to this address: the only proof that sending works end to end. */
  send?: { to: string };
}

/** What a passed step found, and a warning worth acting on. */
type Finding = ProbeFinding;

/**
 * Diagnoses one profile step by step, stopping at the first failure: configuration, secret,
 * tokens (and the permissions they carry), the send connection, the receive connection,
 * and optionally a test message. Connection steps log in and leave: nothing is sent (unless
 * asked), read, marked or moved. Every string in the report passes `redact`.
 *
 * `source` may be a function creating the runtime, so that an invalid profiles document
 * becomes the failed `config` step instead of an error. An unknown profile throws
 * EPROFILE_UNKNOWN: there is nothing to diagnose.
 */
export async function diagnoseProfile(source: MailRuntime | (() => MailRuntime), name: string | undefined, options: DiagnoseOptions = {}): Promise<DiagnosisReport> {
  const started = performance.now();
  let runtime: MailRuntime;
  try {
    runtime = typeof source === 'function' ? source() : source;
  } catch (error) {
    if (!isMailError(error) || error.code !== 'ECONFIG') throw error;
    return redactValue({ profile: name ?? error.profile ?? '', ok: false, steps: [{ step: 'config', ok: false, durationMs: elapsed(started), ...failureOf(error, undefined) }] });
  }
  const profile = runtime.profile(name);
  const diagnosis = new ProfileDiagnosis(runtime, profile, options);
  const steps: DiagnosisStep[] = [];
  for (const [step, check] of diagnosis.plan()) {
    const result = await runStep(step, check, { abortSignal: options.abortSignal, logger: runtime.logger, profile: profile.name });
    steps.push(result);
    if (!result.ok) break;
  }
  const failed = steps.find((s) => !s.ok);
  const event = { operation: 'diagnose', profile: profile.name, outcome: failed ? ('error' as const) : ('ok' as const), durationMs: elapsed(started), ...(failed && { failedStep: failed.step, code: failed.code }) };
  if (failed) runtime.logger.warn(event);
  else runtime.logger.info(event);
  const credential = diagnosis.credentialExpiry;
  return redactValue({ profile: profile.name, ok: failed === undefined, steps, ...(credential && { credential }) });
}

class ProfileDiagnosis {
  /**
   * Its own token provider, not the runtime's: a cached token could be an hour old, and the
   * point is to prove that the secret in the store gets a token now. The Graph client is keyed
   * by the token provider, so a diagnosis also gets its own, dropped with it.
   */
  private readonly tokens: TokenProvider;
  private readonly permissions = new Map<string, PermissionCheck>();
  /** Set by the secret step. */
  credentialExpiry?: CredentialExpiry;

  constructor(
    private readonly runtime: MailRuntime,
    private readonly profile: Profile,
    private readonly options: DiagnoseOptions,
  ) {
    this.tokens = new ProfileTokenProvider(profile, runtime.secrets, { proxy: runtime.proxy(profile), defaultManagedIdentityClientId: runtime.settings.azureClientId, requestTimeoutMs: runtime.settings.tokenTimeoutSeconds * 1000 });
  }

  plan(): Array<[DiagnosisStepName, () => Promise<Finding>]> {
    const p = this.profile;
    const steps: Array<[DiagnosisStepName, () => Promise<Finding>]> = [['config', async () => this.config()]];
    if (this.secretNames().length > 0) steps.push(['secret', () => this.secret()]);
    if (scopesNeeded(p).length > 0) steps.push(['token', () => this.token()]);
    if (sendTransport(p)?.probe) steps.push(['send-connect', () => this.sendConnect()]);
    if (p.receive) steps.push(['receive-connect', () => this.receiveConnect()]);
    const send = this.options.send;
    if (send) steps.push(['send-test', () => this.sendTest(send.to)]);
    return steps;
  }

  private config(): Finding {
    const p = this.profile;
    const { endpoints } = p;
    const auth = p.auth;
    const parts = [`mailbox ${p.mailbox}`];
    if (auth.type === 'clientSecret' || auth.type === 'certificate' || auth.type === 'delegated') parts.push(`auth ${auth.type} (tenant ${p.tenantId}, client ${p.clientId}, authority ${endpoints.authority})`);
    else if (auth.type === 'federated') {
      const identity = auth.managedIdentityClientId ? `user-assigned identity ${auth.managedIdentityClientId}` : 'the system-assigned identity';
      parts.push(`auth federated (tenant ${p.tenantId}, client ${p.clientId}, authority ${endpoints.authority}; assertion: ${identity}'s token for ${endpoints.tokenExchangeAudience})`);
    } else if (auth.type === 'managedIdentity') parts.push(`auth managedIdentity (${auth.clientId ? `user-assigned, client ${auth.clientId}` : 'system-assigned'})`);
    else parts.push('auth none');
    parts.push(`cloud ${p.cloud}`);
    for (const side of transportSides(p)) parts.push(side.describe(p));
    return { detail: parts.join('; ') };
  }

  private secretNames(): string[] {
    const auth = this.profile.auth;
    const webhook = this.profile.receive?.deliver && 'webhook' in this.profile.receive.deliver ? this.profile.receive.deliver.webhook.signingSecret : undefined;
    const credential = expiringCredentialOf(this.profile);
    return [...(credential ? [credential.secret] : []), ...(webhook ? [webhook] : [])];
  }

  /** Each secret is read from the store itself, not from the cache: a fix made a minute ago must show. */
  private async secret(): Promise<Finding> {
    const { secrets } = this.runtime;
    const where = secrets.kind === 'keyVault' ? 'Key Vault' : 'the app settings';
    const read = async (name: string) => {
      secrets.invalidate?.(name);
      return readWithProperties(secrets, name, this.options.abortSignal);
    };
    const details: string[] = [];
    const hints: string[] = [];
    const held = expiringCredentialOf(this.profile);
    if (held) {
      const secret = await read(held.secret);
      if (held.credential === 'clientSecret') {
        const value = secret.value;
        details.push(`client secret "${held.secret}" resolved from ${where}`);
        if (value.trim() !== value) hints.push(`The value of "${held.secret}" starts or ends with whitespace: store the client secret exactly as Entra showed it.`);
        if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value.trim())) {
          hints.push(`The value of "${held.secret}" looks like a secret ID (a GUID): store the secret's Value, which Entra shows only once when it is created.`);
        }
      } else {
        const facts = inspectCertificatePem(secret.value, { secretName: held.secret });
        details.push(`certificate "${held.secret}" resolved from ${where}: ${facts.subject}, thumbprint ${facts.thumbprint}, private key matches, valid until ${facts.notAfter.toISOString()} (${facts.daysLeft} days left)`);
      }
      const expiry = credentialExpiryOf(this.profile, held, secret, { warningDays: this.runtime.settings.credentialExpiryWarningDays, store: secrets.kind });
      this.credentialExpiry = expiry;
      this.runtime.credentialExpiry.record(expiry);
      details.push(describeExpiry(expiry));
      if (expiry.state === 'expiring' || expiry.state === 'expired') hints.push(expiry.hint!);
    }
    const deliver = this.profile.receive?.deliver;
    if (deliver && 'webhook' in deliver) {
      await read(deliver.webhook.signingSecret);
      details.push(`webhook signing secret "${deliver.webhook.signingSecret}" resolved`);
    }
    return { detail: details.join('; '), ...(hints.length > 0 && { hint: hints.join(' ') }) };
  }

  private async token(): Promise<Finding> {
    const details: string[] = [];
    const hints: string[] = [];
    for (const need of scopesNeeded(this.profile)) {
      const token = await this.tokens.getToken(need.scope, { abortSignal: this.options.abortSignal });
      const check = checkPermissions(need, readTokenClaims(token));
      this.permissions.set(need.scope, check);
      details.push(`${need.api} token for ${need.scope}: ${check.summary}`);
      hints.push(...check.missing);
    }
    return { detail: details.join('; '), ...(hints.length > 0 && { hint: hints.join(' ') }) };
  }

  private async sendConnect(): Promise<Finding> {
    const granted = (permission: string) => [...this.permissions.values()].some((c) => c.has(permission));
    return sendTransport(this.profile)!.probe!(this.profile, { tokens: this.tokens, proxy: this.runtime.proxy(this.profile), abortSignal: this.options.abortSignal, granted });
  }

  private async receiveConnect(): Promise<Finding> {
    const p = this.profile;
    const receive = receiveTransport(p)!;
    const session = await receive.create(p, { tokens: this.tokens, logger: this.runtime.logger, proxy: this.runtime.proxy(p) }).open({ abortSignal: this.options.abortSignal });
    await session.close();
    return { detail: `opened ${receive.opened(p)} and closed it; nothing was read, marked or moved` };
  }

  private async sendTest(to: string): Promise<Finding> {
    const outcome = await sendMail(
      this.runtime,
      {
        profile: this.profile.name,
        to,
        subject: `m365-mail connection test (${this.profile.name})`,
        text: `This message was sent by the connection test of the mail profile "${this.profile.name}" (${this.profile.mailbox}). No reply is needed.`,
      },
      { abortSignal: this.options.abortSignal },
    );
    return { detail: `sent to ${to} via ${outcome.via}, Message-ID ${outcome.messageId}` };
  }
}

/** The expiry as the secret step's detail says it. */
function describeExpiry(expiry: CredentialExpiry): string {
  if (expiry.expiresOn === null) return `${expiry.credential === 'certificate' ? 'certificate' : 'client secret'} expiry: no date known`;
  const from = expiry.source === 'keyVault' ? 'the vault\'s expiration date' : 'the certificate\'s notAfter';
  return `${expiry.credential === 'certificate' ? 'certificate' : 'client secret'} expiry: ${expiry.expiresOn} (${expiry.daysLeft} days left, ${expiry.state}; from ${from})`;
}

async function runStep(step: DiagnosisStepName, check: () => Promise<Finding>, context: { abortSignal?: AbortSignal; logger: Logger; profile: string }): Promise<DiagnosisStep> {
  const started = performance.now();
  try {
    context.abortSignal?.throwIfAborted();
    const finding = await check();
    return { step, ok: true, durationMs: elapsed(started), detail: finding.detail, ...(finding.hint !== undefined && { hint: finding.hint }) };
  } catch (error) {
    // A MailError is a finding; anything else is a bug, whose stack belongs in the (redacted) log.
    if (!isMailError(error) && !context.abortSignal?.aborted) {
      context.logger.error({ operation: 'diagnose', profile: context.profile, step, outcome: 'error', error: errorDetail(error) });
    }
    return { step, ok: false, durationMs: elapsed(started), ...failureOf(error, context.abortSignal) };
  }
}

function failureOf(error: unknown, abortSignal: AbortSignal | undefined): Pick<DiagnosisStep, 'detail' | 'code' | 'providerCode' | 'hint'> {
  if (abortSignal?.aborted) {
    return {
      code: 'ECONNECTION',
      detail: 'the step did not finish before the diagnosis was cancelled or ran out of time',
      hint: 'A host did not answer in time: check this profile\'s endpoints and that this host may reach them (firewall, proxy, DNS).',
    };
  }
  if (isMailError(error)) {
    return { code: error.code, detail: error.message, ...(error.providerCode !== undefined && { providerCode: error.providerCode }), ...(error.hint !== undefined && { hint: error.hint }) };
  }
  // As in every answer of the API: a bug's own text (paths, internals) stays in the log.
  return {
    code: 'EINTERNAL',
    detail: 'an unexpected failure inside this app',
    hint: 'The function logs of this invocation have the details.',
  };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
