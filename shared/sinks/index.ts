import type { Profile } from '../config/profiles.js';
import { wholeNumberSetting } from '../config/settings.js';
import type { MailRuntime } from '../runtime.js';
import { receiveState } from '../state/index.js';
import { QueueSink } from './queueSink.js';
import type { MessageSink } from './types.js';
import { WebhookSink } from './webhookSink.js';

/** The sink named by the profile's `receive.deliver`. */
export function createSink(runtime: MailRuntime, profile: Profile & { receive: NonNullable<Profile['receive']> }): MessageSink {
  const deliver = profile.receive.deliver;
  if ('webhook' in deliver) {
    return new WebhookSink({
      url: deliver.webhook.url,
      signingSecret: deliver.webhook.signingSecret,
      secrets: runtime.secrets,
      timeoutMs: wholeNumberSetting(runtime.env, 'WEBHOOK_TIMEOUT_MS', { default: 10_000, min: 1 }),
      maxAttempts: wholeNumberSetting(runtime.env, 'WEBHOOK_MAX_ATTEMPTS', { default: 4, min: 1 }),
    });
  }
  const state = receiveState(runtime.env);
  return new QueueSink(state.account, deliver.queue.name, state.payloads);
}
