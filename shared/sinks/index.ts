import type { Profile } from '../config/profiles.js';
import type { AppSettings } from '../config/settings.js';
import type { ProxyRouter } from '../network/proxy.js';
import type { SecretStore } from '../secrets/store.js';
import type { MailState } from '../state/index.js';
import { QueueSink } from './queueSink.js';
import type { MessageSink } from './types.js';
import { WebhookSink } from './webhookSink.js';

/** What a sink is built with: the runtime's secret store, settings and state. */
export interface SinkDeps {
  secrets: SecretStore;
  settings: Pick<AppSettings, 'webhookTimeoutMs' | 'webhookMaxAttempts'>;
  state: MailState;
  /** Where the profile's webhook POSTs go. */
  proxy?: ProxyRouter;
}

/** The sink named by the profile's `receive.deliver`. */
export function createSink(profile: Profile & { receive: NonNullable<Profile['receive']> }, deps: SinkDeps): MessageSink {
  const deliver = profile.receive.deliver;
  if ('webhook' in deliver) {
    return new WebhookSink({
      url: deliver.webhook.url,
      signingSecret: deliver.webhook.signingSecret,
      secrets: deps.secrets,
      timeoutMs: deps.settings.webhookTimeoutMs,
      maxAttempts: deps.settings.webhookMaxAttempts,
      proxy: deps.proxy,
    });
  }
  const state = deps.state.receive;
  return new QueueSink(state.account, deliver.queue.name, state.payloads);
}
