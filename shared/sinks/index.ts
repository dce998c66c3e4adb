import type { Profile } from '../config/profiles.js';
import { MailError } from '../errors.js';
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
      timeoutMs: positiveSetting(runtime.env, 'WEBHOOK_TIMEOUT_MS', 10_000),
      maxAttempts: positiveSetting(runtime.env, 'WEBHOOK_MAX_ATTEMPTS', 4),
    });
  }
  const state = receiveState(runtime.env);
  return new QueueSink(state.account, deliver.queue.name, state.payloads);
}

function positiveSetting(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new MailError('ECONFIG', `${name} must be a positive whole number, not "${raw}"`, { field: name, hint: `Fix or remove the app setting ${name} (default ${fallback}).` });
  }
  return value;
}
