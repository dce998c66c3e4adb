import { createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailError, isMailError } from '../errors.js';
import type { DeliveredMessage } from '../mail/incoming.js';
import { urlTarget, type ProxyRouter } from '../network/proxy.js';
import { proxyMailError } from '../network/proxyErrors.js';
import { proxyFetch, type Fetch } from '../network/proxyFetch.js';
import type { SecretStore } from '../secrets/store.js';
import type { DeliverOptions, MessageSink } from './types.js';

export interface WebhookSinkOptions {
  url: string;
  /** Name of the secret (in the SecretStore) whose value keys the HMAC. */
  signingSecret: string;
  secrets: SecretStore;
  /** Per attempt. @default 10_000 */
  timeoutMs?: number;
  /** Attempts in all, the first included. @default 4 */
  maxAttempts?: number;
  /** Delay before the first retry, doubled for each further one. @default 500 */
  retryDelayMs?: number;
  /** The longest wait between attempts, a Retry-After included. @default 5_000 */
  maxRetryDelayMs?: number;
  /** Where the POSTs go: the profile's proxy, HTTPS_PROXY, or directly (NO_PROXY). @default directly */
  proxy?: ProxyRouter;
}

/** The signature a consumer recomputes: hex HMAC-SHA256 over `<timestamp>.<body>`, keyed with the signing secret. */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * POSTs each message as JSON, signed, to the profile's webhook. 5xx, 408, 429, timeouts and
 * connection failures are retried with exponential backoff (full jitter, bounded attempts,
 * Retry-After honoured up to the delay cap); any other 4xx is the consumer refusing this
 * message, so it is not retried: ESINK_REJECTED.
 */
export class WebhookSink implements MessageSink {
  readonly kind = 'webhook' as const;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly fetch: Fetch;

  constructor(private readonly options: WebhookSinkOptions) {
    this.fetch = proxyFetch(options.proxy);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAttempts = options.maxAttempts ?? 4;
    this.retryDelayMs = options.retryDelayMs ?? 500;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 5_000;
  }

  async deliver(message: DeliveredMessage, options: DeliverOptions = {}): Promise<void> {
    const { backOff } = require('exponential-backoff') as typeof import('exponential-backoff');
    const body = JSON.stringify(message);
    await backOff(() => this.post(message.id, body, options.abortSignal, options.redelivery === true), {
      numOfAttempts: this.maxAttempts,
      startingDelay: this.retryDelayMs,
      timeMultiple: 2,
      maxDelay: this.maxRetryDelayMs,
      jitter: 'full',
      retry: async (error: unknown) => {
        // Only the webhook being unavailable is worth another try: a refusal or a missing secret is not.
        if (options.abortSignal?.aborted || !isMailError(error) || error.code !== 'ESINK_UNAVAILABLE') return false;
        const retryAfter = error.retryAfter;
        if (retryAfter === undefined) return true;
        try {
          await sleep(Math.min(retryAfter * 1000, this.maxRetryDelayMs), undefined, { signal: options.abortSignal });
          return true;
        } catch (sleepError) {
          // An abort ends the wait; the webhook's last answer stands as the failure.
          if (options.abortSignal?.aborted) return false;
          throw sleepError;
        }
      },
    });
  }

  private async post(id: string, body: string, abortSignal: AbortSignal | undefined, redelivery: boolean): Promise<void> {
    // Signed per attempt, so that a consumer rejecting stale timestamps accepts a late retry.
    const timestamp = String(Math.floor(Date.now() / 1000));
    const secret = await this.options.secrets.getSecret(this.options.signingSecret, { abortSignal });
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let response: Response;
    try {
      response = await this.fetch(this.options.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'X-Mail-Id': id,
          'X-Mail-Timestamp': timestamp,
          'X-Mail-Signature': webhookSignature(secret, timestamp, body),
          ...(redelivery && { 'X-Mail-Redelivery': 'true' }),
        },
        body,
        // A redirect would re-POST the signed body to whatever host the Location names.
        redirect: 'manual',
        signal: abortSignal ? AbortSignal.any([abortSignal, timeout]) : timeout,
      });
    } catch (error) {
      // Not retried here: a proxy refusing the tunnel refuses the next attempt too; the message stays unacknowledged for the next poll.
      const target = urlTarget(this.options.url);
      const proxy = this.options.proxy;
      const proxied = proxyMailError(error, { server: proxy?.isDirect(target) === false ? proxy.server : undefined, target, profile: proxy?.profile });
      if (proxied) throw proxied;
      throw new MailError('ESINK_UNAVAILABLE', timeout.aborted ? `the webhook did not answer within ${this.timeoutMs} ms` : `could not reach the webhook: ${(error as Error).message}`, {
        hint: 'Check that the webhook URL is reachable from the function app.',
        cause: error,
      });
    }
    await discardBody(response);
    if (response.ok) return;
    const status = response.status;
    if (status >= 300 && status < 400) {
      // Not followed: the message stays unacknowledged (retried, then the poll stops at it) rather than going where the webhook points.
      throw new MailError('ESINK_UNAVAILABLE', `the webhook answered HTTP ${status} (a redirect${response.headers.get('location') ? ` to ${new URL(response.headers.get('location')!, this.options.url).origin}` : ''}), which is not followed`, {
        providerCode: String(status),
        hint: 'Set receive.deliver.webhook.url to the final URL of the consumer: redirects are never followed, so that the signed message goes only where the profile says.',
      });
    }
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      throw new MailError('ESINK_REJECTED', `the webhook refused message ${id} with HTTP ${status}`, {
        providerCode: String(status),
        hint: 'The consumer answered 4xx: the message was dead-lettered. Check the consumer’s logs for why it refused it.',
      });
    }
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new MailError('ESINK_UNAVAILABLE', `the webhook answered HTTP ${status}`, {
      providerCode: String(status),
      ...(Number.isFinite(retryAfter) && retryAfter >= 0 && { retryAfter }),
      hint: 'The message stays unacknowledged and is delivered again by the next poll.',
    });
  }
}

/**
 * Only the status matters. A short reply is read to its end, which lets the connection be
 * reused; past REPLY_DRAIN_BYTES the rest is cancelled unread, so a consumer answering with a
 * huge body costs no memory (the connection is closed instead).
 */
const REPLY_DRAIN_BYTES = 64 * 1024;

async function discardBody(response: Response): Promise<void> {
  const reader = response.body?.getReader();
  if (!reader) return;
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      read += value.byteLength;
      if (read > REPLY_DRAIN_BYTES) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // The status has arrived; a reply body that breaks off changes nothing about it.
  }
}
