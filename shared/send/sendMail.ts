import { randomUUID } from 'node:crypto';
import { delay } from '../abort.js';
import { MailError, asMailError, inputError } from '../errors.js';
import { withAuthRetry } from '../identity/tokenProvider.js';
import { addressAllowed, parseAddress } from '../mail/address.js';
import { sendRequestSchema, type OutgoingMessage, type SendRequest } from '../mail/outgoing.js';
import type { MailRuntime, SendLimits } from '../runtime.js';
import { checkCallerFrom, profileForCaller } from '../callers/authorize.js';
import type { Caller, Profile } from '../config/profiles.js';

export interface SendOutcome {
  id: string;
  status: 'sent';
  messageId: string;
  profile: string;
  via: string;
}

export interface SendMailOptions {
  abortSignal?: AbortSignal;
  /** Our id for this send; generated when absent. */
  id?: string;
}

/** A validated, normalized message and the profile it goes out through: what the outbox stores. */
export interface PreparedMessage {
  profile: Profile;
  message: OutgoingMessage;
  /** The caller that asked for it, when callers are configured. */
  caller?: string;
}

/**
 * Validates a send request completely (nothing invalid ever reaches a transport),
 * authorizes `from`, then sends it.
 */
export async function sendMail(runtime: MailRuntime, body: unknown, options: SendMailOptions = {}): Promise<SendOutcome> {
  return deliverMessage(runtime, prepareMessage(runtime, body), { ...options, id: options.id ?? randomUUID() });
}

/**
 * The one sending path, for a request sent now and for a queued one: through the profile's
 * transport, re-reading the secret once after an authentication failure.
 */
export async function deliverMessage(runtime: MailRuntime, prepared: PreparedMessage, options: { id: string; abortSignal?: AbortSignal; mode?: 'sync' | 'queued'; pace?: 'check' | 'booked' }): Promise<SendOutcome> {
  const { profile, message } = prepared;
  const id = options.id;
  if (options.pace !== 'booked') await checkPace(runtime, profile, message, options.abortSignal);
  const started = Date.now();
  const sender = runtime.sender(profile);
  const telemetry = runtime.telemetry;
  const attributes = { 'mail.profile': profile.name, 'mail.transport': sender.via, ...(options.mode !== undefined && { 'mail.send.mode': options.mode }) };
  return telemetry.span('mail.send', attributes, async (span) => {
    try {
      const result = await withAuthRetry(runtime.tokens(profile), () => sender.send(message, { abortSignal: options.abortSignal }));
      runtime.logger.info({ operation: 'send', profile: profile.name, id, via: sender.via, outcome: 'ok', durationMs: Date.now() - started, recipients: recipientCount(message) });
      span.set({ 'mail.outcome': 'sent' });
      telemetry.count('mail.sent', attributes);
      return { id, status: 'sent', messageId: result.messageId, profile: profile.name, via: sender.via };
    } catch (error) {
      const e = asMailError(error);
      runtime.logger.error({ operation: 'send', profile: profile.name, id, via: sender.via, outcome: 'error', code: e.code, durationMs: Date.now() - started, error: error instanceof Error ? error.message : String(error) });
      telemetry.count('mail.send.failures', { ...attributes, 'error.type': e.code });
      // Graph's throttled answers are counted where they arrive (each one, retried or not); SMTP's here.
      if (e.code === 'ETHROTTLED' && sender.via !== 'graph') telemetry.count('mail.throttled', attributes);
      throw error;
    }
  });
}

/** to + cc + bcc: what Exchange counts against a mailbox's recipients per day. */
export function recipientCount(message: OutgoingMessage): number {
  return message.to.length + message.cc.length + message.bcc.length;
}

/**
 * How long a send may wait in the process for its place in the mailbox's send rate; a later
 * place is not waited for here: a queued send waits on the queue, a sync one is told to come back.
 */
export const SHORT_PACE_WAIT_MS = 3_000;

/**
 * A send that cannot wait long (sync, the CLI, a diagnosis) goes when the mailbox's send rate,
 * across every instance, has a place for it within SHORT_PACE_WAIT_MS; otherwise ETHROTTLED with
 * the seconds until it has, which the HTTP API answers as 429 with Retry-After, instead of
 * sending into Exchange's own throttling.
 */
async function checkPace(runtime: MailRuntime, profile: Profile, message: OutgoingMessage, abortSignal: AbortSignal | undefined): Promise<void> {
  const decision = await runtime.governor?.pace(profile, recipientCount(message), { maxWaitMs: SHORT_PACE_WAIT_MS, abortSignal });
  if (!decision || decision.waitMs === 0) return;
  if (decision.booked) {
    await delay(Math.max(0, decision.at - Date.now()), abortSignal);
    return;
  }
  runtime.governor!.deferred(profile, decision, 'sync');
  const seconds = Math.max(1, Math.ceil(decision.waitMs / 1000));
  const limit = decision.limit === 'recipients_per_day' ? `${profile.send?.recipientsPerDay} recipients a day (send.recipientsPerDay)` : `${profile.send?.ratePerMinute} messages a minute (send.ratePerMinute)`;
  throw new MailError('ETHROTTLED', `profile "${profile.name}": ${profile.mailbox} is at its send rate of ${limit}`, {
    profile: profile.name,
    retryAfter: seconds,
    hint: `Send again after ${seconds} s, or queue the message (?mode=queued), which waits for its turn by itself. Exchange Online allows 30 messages a minute and 10,000 recipients a day per mailbox.`,
  });
}

/** Parses, normalizes and checks a send request against the profile; throws 4xx MailErrors. */
export function prepareMessage(runtime: MailRuntime, body: unknown, options: { caller?: Caller } = {}): PreparedMessage {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new MailError('EINPUT', 'the body must be a JSON object', { hint: 'Send Content-Type: application/json with a message object.' });
  }
  const named = (body as { profile?: unknown }).profile;
  const profile = profileForCaller(runtime, options.caller, typeof named === 'string' && named !== '' ? named : undefined);
  checkCounts(body as Record<string, unknown>, runtime.sendLimits(profile));
  const parsed = sendRequestSchema.safeParse(body);
  if (!parsed.success) throw inputError(parsed.error);
  const request = parsed.data;
  if (!profile.send) {
    throw new MailError('EINPUT', `profile "${profile.name}" is not configured to send`, { field: 'profile', profile: profile.name, hint: 'Add a send section to the profile, or use another profile.' });
  }
  const message = normalize(profile, request);
  checkCallerFrom(options.caller, message.from.address);
  checkLimits(runtime, profile, message);
  return { profile, message, ...(options.caller && { caller: options.caller.name }) };
}

function normalize(profile: Profile, request: SendRequest): OutgoingMessage {
  const from = request.from === undefined ? { address: profile.mailbox } : parseAddress(request.from);
  if (typeof from === 'string') throw new MailError('EINPUT', `from: ${from}`, { field: 'from', hint: 'Give one address, "Name <a@b.c>" or {"name","address"}.' });
  if (!addressAllowed(from.address, profile.allowedFrom)) {
    throw new MailError('EFROM_NOT_ALLOWED', `profile "${profile.name}" may not send as ${from.address}`, {
      field: 'from',
      profile: profile.name,
      hint: `Use one of ${profile.allowedFrom.join(', ')}, or add the address to send.allowedFrom (the mailbox also needs Send As rights in Exchange).`,
    });
  }
  const to = request.to ?? [];
  const cc = request.cc ?? [];
  const bcc = request.bcc ?? [];
  if (to.length + cc.length + bcc.length === 0) {
    throw new MailError('ENO_RECIPIENTS', 'the message has no recipients', { field: 'to', hint: 'Give at least one address in to, cc or bcc.' });
  }
  if (request.text === undefined && request.html === undefined && request.attachments.length === 0) {
    throw new MailError('ENOTHING_TO_SEND', 'the message has no text, html or attachments', { field: 'text', hint: 'Give text and/or html (or at least one attachment).' });
  }
  const domain = from.address.slice(from.address.lastIndexOf('@') + 1);
  return {
    from,
    to,
    cc,
    bcc,
    replyTo: request.replyTo ?? [],
    subject: request.subject,
    text: request.text,
    html: request.html,
    importance: request.importance,
    headers: request.headers,
    attachments: request.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: Buffer.from(a.content, 'base64'), contentId: a.contentId })),
    messageId: `<${randomUUID()}@${domain}>`,
  };
}

/**
 * Counts checked on the raw body, before anything in it is parsed: 200,000 recipients must be
 * refused at once, not after every address went through the address parser (which blocked the
 * event loop). Exchange Online's own limits are the defaults: 500 recipients, 250 attachments.
 */
function checkCounts(body: Record<string, unknown>, limits: SendLimits): void {
  const count = (value: unknown) => (Array.isArray(value) ? value.length : value === undefined ? 0 : 1);
  const hint = 'Split the message, or raise send.maxRecipients / SEND_MAX_RECIPIENTS (Exchange Online allows at most 500 per message by default).';
  for (const field of ['to', 'cc', 'bcc', 'replyTo'] as const) {
    const n = count(body[field]);
    if (n > limits.maxRecipients) throw new MailError('ETOO_MANY_RECIPIENTS', `${field} has ${n} addresses, over the limit of ${limits.maxRecipients}`, { field, hint });
  }
  const recipients = count(body.to) + count(body.cc) + count(body.bcc);
  if (recipients > limits.maxRecipients) throw new MailError('ETOO_MANY_RECIPIENTS', `${recipients} recipients exceed the limit of ${limits.maxRecipients}`, { field: 'to', hint });
  const attachments = count(body.attachments);
  if (attachments > limits.maxAttachments) {
    throw new MailError('ETOO_MANY_ATTACHMENTS', `${attachments} attachments exceed the limit of ${limits.maxAttachments}`, { field: 'attachments', hint: 'Send fewer attachments (an archive, or a link), or raise send.maxAttachments / SEND_MAX_ATTACHMENTS (Exchange Online allows 250).' });
  }
  const headers = body.headers;
  if (headers !== null && typeof headers === 'object' && !Array.isArray(headers)) {
    const entries = Object.entries(headers);
    if (entries.length > limits.maxHeaders) {
      throw new MailError('ETOO_MANY_HEADERS', `${entries.length} custom headers exceed the limit of ${limits.maxHeaders}`, { field: 'headers', hint: 'Send fewer custom headers, or raise SEND_MAX_HEADERS.' });
    }
    const bytes = entries.reduce((sum, [name, value]) => sum + Buffer.byteLength(name) + (typeof value === 'string' ? Buffer.byteLength(value) : 0), 0);
    if (bytes > limits.maxHeaderBytes) {
      throw new MailError('ETOO_LARGE', `the custom headers are ${bytes} bytes, over the limit of ${limits.maxHeaderBytes}`, { field: 'headers', hint: 'Send shorter custom headers, or raise SEND_MAX_HEADER_BYTES (Exchange Online refuses a header section over 256 KB).' });
    }
  }
}

/**
 * What the send worker checks of a queued message before it sends it: the profile and the caller
 * as they are now, not as they were when it was accepted. A profile that lost its send section,
 * an allowedFrom narrowed since, a caller removed or no longer granted the profile, or lower
 * limits: the send fails with that code and is never sent.
 */
export function checkQueuedMessage(runtime: MailRuntime, prepared: { profile: string; message: OutgoingMessage; caller?: string }): Profile {
  const caller = prepared.caller === undefined ? undefined : runtime.profiles.callers.get(prepared.caller);
  if (prepared.caller !== undefined && caller === undefined) {
    throw new MailError('EFORBIDDEN', `caller "${prepared.caller}" that queued this message is no longer configured`, { hint: 'The caller was removed from the profiles document after the message was queued; send it again as a configured caller.' });
  }
  const profile = profileForCaller(runtime, caller, prepared.profile);
  if (!profile.send) {
    throw new MailError('EINPUT', `profile "${profile.name}" is no longer configured to send`, { field: 'profile', profile: profile.name, hint: 'The send section was removed after the message was queued.' });
  }
  const { message } = prepared;
  if (!addressAllowed(message.from.address, profile.allowedFrom)) {
    throw new MailError('EFROM_NOT_ALLOWED', `profile "${profile.name}" may no longer send as ${message.from.address}`, { field: 'from', profile: profile.name, hint: 'send.allowedFrom was narrowed after the message was queued.' });
  }
  checkCallerFrom(caller, message.from.address);
  const limits = runtime.sendLimits(profile);
  if (message.attachments.length > limits.maxAttachments) {
    throw new MailError('ETOO_MANY_ATTACHMENTS', `${message.attachments.length} attachments exceed the limit of ${limits.maxAttachments}`, { field: 'attachments' });
  }
  checkLimits(runtime, profile, message);
  return profile;
}

function checkLimits(runtime: MailRuntime, profile: Profile, message: OutgoingMessage): void {
  const limits = runtime.sendLimits(profile);
  const recipients = recipientCount(message);
  if (recipients > limits.maxRecipients) {
    throw new MailError('ETOO_MANY_RECIPIENTS', `${recipients} recipients exceed the limit of ${limits.maxRecipients}`, {
      field: 'to',
      hint: 'Split the message, or raise send.maxRecipients / SEND_MAX_RECIPIENTS (Exchange Online allows at most 500 per message by default).',
    });
  }
  // Attachments travel base64-encoded: 4 bytes for every 3.
  const parts = {
    text: Buffer.byteLength(message.text ?? ''),
    html: Buffer.byteLength(message.html ?? ''),
    attachments: message.attachments.reduce((sum, a) => sum + Math.ceil(a.content.length / 3) * 4, 0),
  };
  const size = parts.text + parts.html + parts.attachments;
  if (size > limits.maxBytes) {
    // The answer names the largest part: that is what to make smaller.
    const largest = (Object.keys(parts) as Array<keyof typeof parts>).reduce((a, b) => (parts[b] > parts[a] ? b : a));
    throw new MailError('ETOO_LARGE', `the message is about ${size} bytes, over the limit of ${limits.maxBytes}`, {
      field: largest,
      hint: 'Send smaller attachments or a link, or raise send.maxBytes / SEND_MAX_BYTES (Exchange Online accepts 35 MB by default, up to 150 MB).',
    });
  }
}
