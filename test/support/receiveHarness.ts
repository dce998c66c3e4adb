import { mkdirSync, mkdtempSync, rmSync, writeFileSync, utimesSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer';
import type { MailComposerOptions } from 'nodemailer/lib/mail-composer';
import { createLogger, type Logger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { MailState, type ReceiveState } from '../../shared/state/index.js';
import { AzuritePeer } from '../peers/azurite.js';
import { WebhookReceiverPeer } from '../peers/webhookReceiver.js';

export const HOOK_SECRET = 'hook-signing-key-7f3a9c';

/** A message as a mail client would write it, composed by nodemailer (deterministic Message-ID given). */
export async function composeEml(options: MailComposerOptions): Promise<Buffer> {
  return new MailComposer({ date: new Date('2024-03-01T09:00:00Z'), ...options }).compile().build();
}

export function capturingLogger(lines: string[]): Logger {
  const sink = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  return createLogger({ log: sink, warn: sink, error: sink });
}

/**
 * Azurite, a webhook consumer and a scratch mail folder for receive tests: one of each per
 * test file. `runtime(profiles)` builds a MailRuntime whose state lives in that Azurite.
 */
export class ReceiveHarness {
  readonly azurite = new AzuritePeer();
  readonly webhook = new WebhookReceiverPeer();
  readonly logs: string[] = [];
  dir = '';
  private counter = 0;

  async start(): Promise<void> {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'm365-receive-'));
    await Promise.all([this.azurite.start(), this.webhook.start()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.azurite.stop(), this.webhook.stop()]);
    rmSync(this.dir, { recursive: true, force: true });
  }

  get env(): NodeJS.ProcessEnv {
    return { AzureWebJobsStorage: this.azurite.connectionString, HOOK_SIGNING_KEY: HOOK_SECRET, WEBHOOK_TIMEOUT_MS: '2000' };
  }

  private mailState?: MailState;

  /** The state every runtime of this harness uses, so that a test can look into it or make it fail. */
  get state(): ReceiveState {
    this.mailState ??= new MailState(this.env.AzureWebJobsStorage);
    return this.mailState.receive;
  }

  runtime(profiles: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): MailRuntime {
    this.mailState ??= new MailState(this.env.AzureWebJobsStorage);
    return new MailRuntime({ env: { ...this.env, MAIL_PROFILES: JSON.stringify({ profiles }), ...env }, logger: capturingLogger(this.logs), state: this.mailState });
  }

  /** A fresh folder under the scratch directory. */
  folder(name: string): string {
    return path.join(this.dir, `${name}-${++this.counter}`);
  }

  /** A file-transport receiving profile delivering to the webhook peer. */
  fileProfile(inbox: string, receive: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      mailbox: `box${++this.counter}@contoso.com`,
      auth: { type: 'none' },
      receive: { via: 'file', folder: inbox, deliver: { webhook: { url: this.webhook.url, signingSecret: 'hook-signing-key' } }, tags: { category: 'Network' }, ...receive },
    };
  }
}

/** Writes an .eml into `folder`, with a modification time `order` seconds after a fixed base, so oldest-first is well defined. */
export function dropEml(folder: string, name: string, raw: Buffer, order: number): string {
  mkdirSync(folder, { recursive: true });
  const file = path.join(folder, name);
  writeFileSync(file, raw);
  const at = new Date(Date.UTC(2024, 2, 1, 9, 0, order));
  utimesSync(file, at, at);
  return file;
}
