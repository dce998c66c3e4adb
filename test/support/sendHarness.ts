import assert from 'node:assert/strict';
import { after, before, beforeEach } from 'node:test';
import { randomUUID } from 'node:crypto';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { send } from '../../functions/send.js';
import { sendStatus } from '../../functions/sendStatus.js';
import { sendWorker } from '../../functions/sendWorker.js';
import type { Profile } from '../../shared/config/profiles.js';
import type { TokenProvider } from '../../shared/identity/tokenProvider.js';
import type { Logger } from '../../shared/log.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import type { TransportDeps } from '../../shared/transports/types.js';
import { recordingTokens } from '../contract/loopback.js';
import { SEND_QUEUE } from '../../shared/state/sendQueue.js';
import { MailState } from '../../shared/state/index.js';
import type { SendState } from '../../shared/state/sendState.js';
import { AzuritePeer } from '../peers/azurite.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { capturingLogger } from './receiveHarness.js';

export const MAILBOX = 'support@contoso.com';
const APP = { tenantId: 'contoso-tenant', clientId: 'mail-app', secret: `app-secret-${randomUUID()}` };

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  raw: string;
}

/**
 * Azurite, the token endpoint, the SMTP and Graph peers, and a runtime with two profiles
 * (`smtp` and `graph`, one mailbox) whose state lives in that Azurite: one per test file.
 * Requests go through the exported function handlers, as the host would call them.
 */
export class SendHarness {
  readonly azurite = new AzuritePeer();
  readonly entra = new TokenEndpointPeer();
  readonly smtp = new SmtpPeer({ tokens: this.entra, mailboxes: [MAILBOX] });
  readonly graph = new GraphPeer(this.entra);
  /** Every line the runtime and the function contexts logged. */
  readonly logs: string[] = [];
  private current?: MailRuntime;

  /** A harness started for the enclosing suite, with a fresh runtime and an empty queue before each test. */
  static forSuite(): SendHarness {
    const harness = new SendHarness();
    before(() => harness.start());
    after(() => harness.stop());
    beforeEach(async () => {
      harness.useRuntime();
      await harness.reset();
    });
    return harness;
  }

  async start(): Promise<void> {
    await Promise.all([this.azurite.start(), this.entra.start(), this.smtp.start(), this.graph.start()]);
    this.entra.register({ ...APP });
    this.graph.addMailbox(MAILBOX);
    this.useRuntime();
  }

  async stop(): Promise<void> {
    await this.current?.close();
    setRuntime(undefined);
    await Promise.all([this.azurite.stop(), this.entra.stop(), this.smtp.stop(), this.graph.stop()]);
  }

  /** Installs a fresh process-wide runtime with these extra app settings. */
  useRuntime(settings: NodeJS.ProcessEnv = {}): MailRuntime {
    void this.current?.close();
    const profile = (via: 'smtp' | 'graph') => ({
      mailbox: MAILBOX,
      tenantId: APP.tenantId,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'mail-app-secret' },
      send: { via, allowedFrom: [MAILBOX] },
      endpoints: { authority: this.entra.url, smtp: this.smtp.endpoint, graph: this.graph.url },
    });
    this.current = new MailRuntime({
      env: { AzureWebJobsStorage: this.azurite.connectionString, MAIL_PROFILES: JSON.stringify({ profiles: { smtp: profile('smtp'), graph: profile('graph') } }), MAIL_APP_SECRET: APP.secret, ...settings },
      logger: capturingLogger(this.logs),
    });
    setRuntime(this.current);
    return this.current;
  }

  get state(): SendState {
    return new MailState(this.azurite.connectionString).send;
  }

  /** Forgets what the peers received and what the queue holds. */
  async reset(): Promise<void> {
    this.smtp.messages.splice(0);
    this.smtp.failures = {};
    this.graph.sent.splice(0);
    this.graph.clearFaults();
    await (await this.state.account.queue(SEND_QUEUE)).clearMessages();
  }

  context(functionName: string, triggerMetadata: Record<string, unknown> = {}): InvocationContext {
    const sink = (_level: unknown, ...args: unknown[]) => this.logs.push(args.map(String).join(' '));
    return new InvocationContext({ invocationId: randomUUID(), functionName, triggerMetadata, logHandler: sink });
  }

  async post(body: unknown, options: { query?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
    const request = new HttpRequest({
      method: 'POST',
      url: `http://localhost/api/send${options.query ?? ''}`,
      body: { string: typeof body === 'string' ? body : JSON.stringify(body) },
      headers: { 'content-type': 'application/json', ...options.headers },
    });
    return answer(await send(request, this.context('send')));
  }

  async status(id: string): Promise<Answer> {
    const request = new HttpRequest({ method: 'GET', url: `http://localhost/api/send/${encodeURIComponent(id)}`, params: { id } });
    return answer(await sendStatus(request, this.context('sendStatus')));
  }

  /** Hands one queue item to the worker as the host does (the host decodes the base64 JSON); by default as a message of its own. */
  async deliver(item: unknown, dequeueCount = 1, messageId: string = randomUUID()): Promise<void> {
    await sendWorker(item, this.context('sendWorker', { dequeueCount, id: messageId }));
  }

  /** Runs the worker over every visible message on mail-send until none is left, deleting each handled one, as the host does. */
  async drainQueue(): Promise<number> {
    const queue = await this.state.account.queue(SEND_QUEUE);
    let handled = 0;
    for (;;) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
      if (receivedMessageItems.length === 0) return handled;
      for (const message of receivedMessageItems) {
        await this.deliver(this.decode(message.messageText), message.dequeueCount, message.messageId);
        await queue.deleteMessage(message.messageId, message.popReceipt);
        handled++;
      }
    }
  }

  /** Messages on mail-send, visible or not, and the visible ones decoded. */
  async queueContents(): Promise<{ total: number; visible: unknown[] }> {
    const queue = await this.state.account.queue(SEND_QUEUE);
    const { approximateMessagesCount } = await queue.getProperties();
    const { peekedMessageItems } = await queue.peekMessages({ numberOfMessages: 32 });
    return { total: approximateMessagesCount ?? 0, visible: peekedMessageItems.map((m) => this.decode(m.messageText)) };
  }

  private decode(text: string): unknown {
    return JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as unknown;
  }
}

export interface SenderSetup {
  profile: Profile;
  /** What to build the sender with: the profile's token provider (or the one given), recording every token it hands out, and a capturing logger. */
  deps: TransportDeps & { logger: Logger };
  tokensSeen: string[];
  logs: string[];
}

/**
 * One profile `support` that sends from `mailbox` over `via` with the app's client secret, for
 * a transport's own tests: the sender is built from `deps`, so they see every token and log line.
 */
export function senderSetup(options: {
  via: 'smtp' | 'graph';
  mailbox: string;
  app: { tenantId: string; clientId: string; secret: string };
  endpoints: Record<string, string>;
  tokens?: TokenProvider;
  /** More fields of the send section (the transport's own: smtpSecurity). */
  send?: Record<string, unknown>;
}): SenderSetup {
  const logs: string[] = [];
  const logger = capturingLogger(logs);
  const profiles = { profiles: { support: {
    mailbox: options.mailbox,
    tenantId: options.app.tenantId,
    clientId: options.app.clientId,
    auth: { type: 'clientSecret', secret: 'support-client-secret' },
    send: { via: options.via, allowedFrom: [options.mailbox], ...options.send },
    endpoints: options.endpoints,
  } } };
  const runtime = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), SUPPORT_CLIENT_SECRET: options.app.secret }, logger });
  const profile = runtime.profile('support');
  const tokensSeen: string[] = [];
  return { profile, deps: { tokens: recordingTokens(options.tokens ?? runtime.tokens(profile), tokensSeen), logger }, tokensSeen, logs };
}

function answer(response: HttpResponseInit): Answer {
  const raw = typeof response.body === 'string' ? response.body : '';
  const headers = Object.fromEntries(Object.entries((response.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
  assert.ok(raw.length > 0, `status ${response.status} without a body`);
  return { status: response.status ?? 200, headers, body: JSON.parse(raw) as Record<string, unknown>, raw };
}
