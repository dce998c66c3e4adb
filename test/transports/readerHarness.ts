import { randomBytes } from 'node:crypto';
import type { Profile } from '../../shared/config/profiles.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import type { TokenProvider } from '../../shared/identity/tokenProvider.js';
import { ProfileTokenProvider } from '../../shared/identity/tokenProvider.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { EnvironmentSecretStore } from '../../shared/secrets/environment.js';
import { CachedSecretStore } from '../../shared/secrets/store.js';
import type { FetchedMessage, MailboxReader, MailboxSession, ReaderCursor, TransportDeps } from '../../shared/transports/types.js';
import type { TokenEndpointPeer } from '../peers/tokenEndpoint.js';

/** What the mailbox readers' tests share: a profile aimed at loopback peers, real tokens, captured logs. */
export const MAILBOX = 'support@contoso.com';
export const TENANT = 'contoso-tenant';
export const CLIENT_ID = 'mail-reader-app';
export const SECRET = 'reader-secret-value-1';

export interface ReaderSetup {
  profile: Profile;
  deps: TransportDeps;
  /** Every line the logger wrote. */
  logs: string[];
  /** Every access token handed out to the reader. */
  tokensSeen: string[];
}

export function readerSetup(entra: TokenEndpointPeer, receive: Record<string, unknown>, endpoints: Record<string, string>, options: { mailbox?: string } = {}): ReaderSetup {
  entra.register({ tenantId: TENANT, clientId: CLIENT_ID, secret: SECRET });
  const profile = parseProfiles(
    {
      profiles: {
        support: {
          mailbox: options.mailbox ?? MAILBOX,
          tenantId: TENANT,
          clientId: CLIENT_ID,
          auth: { type: 'clientSecret', secret: 'support-client-secret' },
          receive: { deliver: { queue: { name: 'mail-incoming' } }, ...receive },
          endpoints: { authority: entra.url, ...endpoints },
        },
      },
    },
    'test',
  ).profiles.get('support')!;
  const logs: string[] = [];
  const tokensSeen: string[] = [];
  const line = (...args: unknown[]) => logs.push(args.map(String).join(' '));
  const logger: Logger = createLogger({ log: line, warn: line, error: line });
  const provider = new ProfileTokenProvider(profile, new CachedSecretStore(new EnvironmentSecretStore({ SUPPORT_CLIENT_SECRET: SECRET })));
  const tokens: TokenProvider = {
    async getToken(scope, options) {
      const token = await provider.getToken(scope, options);
      tokensSeen.push(token);
      return token;
    },
    renew: () => provider.renew(),
  };
  return { profile, deps: { tokens, logger }, logs, tokensSeen };
}

export interface PolledMessage {
  providerId: string;
  source: Buffer;
  size?: number;
  seen?: boolean;
  receivedAt?: Date;
  cursorAfter?: ReaderCursor;
  fetched: FetchedMessage;
}

export interface PollResult {
  messages: PolledMessage[];
  finalCursor: ReaderCursor | undefined;
  resynced: boolean;
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/**
 * One poll as the orchestrator makes it: open, list since the cursor, read every source,
 * acknowledge each (afterFetch "none" unless `afterEach` acknowledges it otherwise), close.
 */
export async function poll(
  reader: MailboxReader,
  cursor: ReaderCursor | undefined,
  options: { limit?: number; afterEach?: (session: MailboxSession, message: FetchedMessage) => Promise<ReaderCursor | undefined> } = {},
): Promise<PollResult> {
  const session = await reader.open();
  try {
    const messages: PolledMessage[] = [];
    for await (const fetched of session.messages(cursor, { limit: options.limit ?? 100 })) {
      const source = await readAll(await fetched.openSource());
      const cursorAfter = await (options.afterEach ?? ((s, m) => s.acknowledge(m, { afterFetch: 'none' })))(session, fetched);
      messages.push({ providerId: fetched.providerId, source, size: fetched.size, seen: fetched.seen, receivedAt: fetched.receivedAt, cursorAfter, fetched });
    }
    return { messages, finalCursor: session.finalCursor(), resynced: session.resynced };
  } finally {
    await session.close();
  }
}

/**
 * A message whose bytes would catch a lossy reader: CRLF endings, 8-bit (non-UTF-8) bytes,
 * lines that start with a dot (POP3 dot-stuffing), and a line that is just a dot.
 */
export function rawMessage(n: number, extra = ''): Buffer {
  const head = Buffer.from(
    [
      `From: Sender ${n} <sender${n}@example.org>`,
      `To: ${MAILBOX}`,
      `Subject: message ${n}`,
      `Message-ID: <msg-${n}-${randomBytes(4).toString('hex')}@example.org>`,
      'Date: Tue, 02 Jan 2024 10:00:00 +0000',
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=iso-8859-1',
      'Content-Transfer-Encoding: 8bit',
      '',
      `Body of message ${n}.${extra}`,
      '.a line that starts with a dot',
      '.',
      '..two dots',
      'caf',
    ].join('\r\n'),
    'latin1',
  );
  return Buffer.concat([head, Buffer.from([0xe9]), Buffer.from(' (latin-1 e-acute)\r\n')]);
}

/** About `size` bytes: base64 of random data in 76-character lines, as a mail client sends an attachment. */
export function largeMessage(size: number): Buffer {
  const body = randomBytes(Math.ceil((size * 3) / 4)).toString('base64').replace(/.{76}/g, '$&\r\n');
  return Buffer.from(
    [`From: big@example.org`, `To: ${MAILBOX}`, 'Subject: large', 'MIME-Version: 1.0', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: base64', '', body, ''].join('\r\n'),
  );
}
