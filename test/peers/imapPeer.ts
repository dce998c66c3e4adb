import { readFileSync } from 'node:fs';
import type { AddressInfo, Server } from 'node:net';
import path from 'node:path';
import { serverTls } from './tls.js';
import type { TokenEndpointPeer } from './tokenEndpoint.js';

/**
 * An IMAP server over TLS on 127.0.0.1:<port>, serving one mailbox the way Exchange Online
 * does for app-only OAuth: AUTHENTICATE XOAUTH2 (with SASL-IR) is the only way in, and only
 * a token that the TokenEndpointPeer issued for the Exchange audience opens it.
 *
 * Built on npm `hoodiecrow-imap` 2.1.0 (SELECT, UID SEARCH, UID FETCH with partials, STORE,
 * MOVE, UIDPLUS, SPECIAL-USE, SEARCH HEADER). Patched here, at the peer level: its XOAUTH2 handler checks one fixed token
 * per user, so it is replaced by one that asks the token peer; LOGIN is refused (Exchange
 * allows no password login for app-only access); SELECT of a missing folder answers NO
 * [NONEXISTENT] as real servers do (hoodiecrow says BAD); and UIDVALIDITY changes are made on its
 * in-memory folders directly, as it has no command for them.
 */
export interface ImapPeerOptions {
  /** The one mailbox this server holds; the SASL user must be this address. */
  mailbox: string;
  /** Token audience accepted. @default https://outlook.office365.com */
  audience?: string;
  /** App (client) ids granted access to the mailbox (Add-MailboxPermission); undefined grants every app. */
  grantedClients?: string[];
  /** Serve hoodiecrow's own self-signed certificate, which no test trusts. */
  untrustedCertificate?: boolean;
  /** Folders besides INBOX that exist from the start. */
  folders?: string[];
  /** A folder that exists from the start marked `\Sent` (RFC 6154 SPECIAL-USE), as Exchange's "Sent Items" is. */
  sentFolder?: string;
}

export interface AuthAttempt {
  mechanism: string;
  user: string;
  outcome: 'ok' | 'refused';
}

export interface StoredMessage {
  uid: number;
  flags: string[];
  raw: Buffer;
  internalDate: string;
}

/** The parts of hoodiecrow's untyped server object this peer touches. */
interface HoodiecrowMessage {
  uid: number;
  flags: string[];
  raw: string;
  internaldate: string;
}
interface HoodiecrowMailbox {
  path: string;
  uidvalidity: number;
  uidnext: number;
  messages: HoodiecrowMessage[];
}
interface HoodiecrowParsed {
  tag: string;
  command: string;
  attributes?: Array<{ type: string; value: string }>;
}
interface HoodiecrowConnection {
  state: string;
  socket: import('node:net').Socket | null;
  scheduleCommand(data: string): void;
  send(response: unknown, description: string, parsed: HoodiecrowParsed, data: string): void;
}
type CommandHandler = (connection: HoodiecrowConnection, parsed: HoodiecrowParsed, data: string, callback: () => void) => void;
interface HoodiecrowServer {
  server: Server;
  folderCache: Record<string, HoodiecrowMailbox>;
  connectionHandlers: Array<(connection: HoodiecrowConnection) => void>;
  listen(port: number, host: string, callback: () => void): void;
  close(callback: () => void): void;
  setCommandHandler(command: string, handler: CommandHandler): void;
  getMailbox(path: string): HoodiecrowMailbox | undefined;
  createMailbox(path: string): void;
  appendMessage(mailbox: HoodiecrowMailbox, flags: string[], internaldate: Date | string | undefined, raw: string): { message: HoodiecrowMessage };
}
type HoodiecrowFactory = (options: Record<string, unknown>) => HoodiecrowServer;

const EXCHANGE_AUDIENCE = 'https://outlook.office365.com';

export class ImapPeer {
  readonly authAttempts: AuthAttempt[] = [];
  /** Every command line received, with AUTHENTICATE arguments left out. */
  readonly commands: string[] = [];
  private readonly server: HoodiecrowServer;
  private port = 0;
  private readonly sockets = new Set<import('node:net').Socket>();
  private dropOn?: (command: string) => boolean;

  constructor(
    private readonly entra: TokenEndpointPeer,
    private readonly options: ImapPeerOptions,
  ) {
    const hoodiecrow = require('hoodiecrow-imap') as HoodiecrowFactory;
    const credentials = options.untrustedCertificate
      ? {
          key: readFileSync(path.join(path.dirname(require.resolve('hoodiecrow-imap')), '..', 'cert', 'server.key')),
          cert: readFileSync(path.join(path.dirname(require.resolve('hoodiecrow-imap')), '..', 'cert', 'server.crt')),
        }
      : { key: serverTls().key, cert: serverTls().cert };
    this.server = hoodiecrow({
      secureConnection: true,
      credentials,
      users: { [options.mailbox]: {} },
      plugins: ['ID', 'UNSELECT', 'SASL-IR', 'UIDPLUS', 'MOVE', 'IDLE', 'NAMESPACE', 'SPECIAL-USE', 'ENABLE', xoauth2Only(this)],
      storage: {
        INBOX: { messages: [] },
        '': {
          separator: '/',
          folders: {
            ...Object.fromEntries((options.folders ?? []).map((f) => [f, { messages: [] }])),
            ...(options.sentFolder !== undefined && { [options.sentFolder]: { 'special-use': '\\Sent', messages: [] } }),
          },
        },
      },
    });
    this.server.connectionHandlers.push((connection) => {
      const schedule = connection.scheduleCommand.bind(connection);
      connection.scheduleCommand = (data: string) => {
        this.commands.push(/^\S+\s+AUTHENTICATE\b/i.test(data) ? data.split(/\s+/).slice(0, 3).join(' ') : data);
        if (this.dropOn?.(data)) {
          this.dropOn = undefined;
          connection.socket?.destroy();
          return;
        }
        schedule(data);
      };
    });
    this.server.server.on('secureConnection', (socket: import('node:net').Socket) => {
      // hoodiecrow writes each response line on its own; with Nagle on, every command would
      // wait for the client's delayed ACK (about 40 ms each).
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  get mailbox(): string {
    return this.options.mailbox;
  }

  /** For `profile.endpoints.imap`. */
  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * The connection that receives the first command `matches` accepts is closed without an
   * answer, as a server restart or a network cut does; later connections are served as usual.
   */
  dropConnectionOn(matches: (command: string) => boolean): void {
    this.dropOn = matches;
  }

  /** Validates an XOAUTH2 login the way Exchange does for app-only access. */
  accepts(user: string, token: string): boolean {
    if (user.toLowerCase() !== this.options.mailbox.toLowerCase()) return false;
    const issued = this.entra.validate(token, this.options.audience ?? EXCHANGE_AUDIENCE);
    if (!issued) return false;
    return this.options.grantedClients === undefined || this.options.grantedClients.includes(issued.clientId);
  }

  /** Appends raw RFC 5322 bytes; returns the new UID. */
  append(folder: string, raw: Buffer | string, options: { flags?: string[]; internalDate?: Date } = {}): number {
    const bytes = typeof raw === 'string' ? Buffer.from(raw) : raw;
    // hoodiecrow keeps message sources as binary (latin1) strings, byte for byte.
    const { message } = this.server.appendMessage(this.folder(folder), options.flags ?? [], options.internalDate ?? new Date(), bytes.toString('latin1'));
    return message.uid;
  }

  messages(folder: string): StoredMessage[] {
    return this.folder(folder).messages.map((m) => ({ uid: m.uid, flags: [...m.flags], raw: Buffer.from(m.raw, 'latin1'), internalDate: m.internaldate }));
  }

  flags(folder: string, uid: number): string[] | undefined {
    return this.messages(folder).find((m) => m.uid === uid)?.flags;
  }

  folders(): string[] {
    return Object.keys(this.server.folderCache);
  }

  hasFolder(name: string): boolean {
    return this.server.getMailbox(name) !== undefined;
  }

  createFolder(name: string): void {
    this.server.createMailbox(name);
  }

  uidValidity(folder: string): number {
    return this.folder(folder).uidvalidity;
  }

  /** What a server does when it rebuilds a folder: a new UIDVALIDITY and UIDs renumbered from 1. */
  changeUidValidity(folder: string): number {
    const mailbox = this.folder(folder);
    mailbox.uidvalidity += 1000;
    mailbox.messages.forEach((m, i) => {
      m.uid = i + 1;
    });
    mailbox.uidnext = mailbox.messages.length + 1;
    return mailbox.uidvalidity;
  }

  private folder(name: string): HoodiecrowMailbox {
    const mailbox = this.server.getMailbox(name);
    if (!mailbox) throw new Error(`the IMAP peer has no folder ${name}`);
    return mailbox;
  }
}

/**
 * Replaces hoodiecrow's XOAUTH2 (one fixed token per user) with validation against the token
 * peer, and offers no other mechanism: imapflow prefers OAUTHBEARER whenever it is offered,
 * which Office 365 never does. A refusal is answered as Exchange answers it: a tagged
 * `NO AUTHENTICATE failed.`, without the Gmail-style JSON continuation.
 */
function xoauth2Only(peer: ImapPeer): (server: HoodiecrowServer & { registerCapability(name: string, when: (c: HoodiecrowConnection) => boolean): void }) => void {
  return (server) => {
    server.registerCapability('AUTH=XOAUTH2', (connection) => connection.state === 'Not Authenticated');
    const reply = (connection: HoodiecrowConnection, parsed: HoodiecrowParsed, data: string, command: 'OK' | 'NO' | 'BAD', text: string) =>
      connection.send({ tag: parsed.tag, command, attributes: [{ type: 'TEXT', value: text }] }, `AUTHENTICATE XOAUTH2 ${command}`, parsed, data);
    server.setCommandHandler('AUTHENTICATE XOAUTH2', (connection, parsed, data, callback) => {
      if (connection.state !== 'Not Authenticated') {
        reply(connection, parsed, data, 'BAD', 'Command received in Invalid state.');
        return callback();
      }
      const fields = Buffer.from(parsed.attributes?.[0]?.value ?? '', 'base64').toString('utf8').split('\x01');
      const user = /^user=(.+)$/.exec(fields[0] ?? '')?.[1] ?? '';
      const token = /^auth=Bearer (.+)$/.exec(fields[1] ?? '')?.[1] ?? '';
      const wellFormed = fields.length === 4 && fields[2] === '' && fields[3] === '';
      const ok = wellFormed && peer.accepts(user, token);
      peer.authAttempts.push({ mechanism: 'XOAUTH2', user, outcome: ok ? 'ok' : 'refused' });
      if (ok) {
        connection.state = 'Authenticated';
        reply(connection, parsed, data, 'OK', 'AUTHENTICATE completed.');
      } else {
        reply(connection, parsed, data, 'NO', 'AUTHENTICATE failed.');
      }
      return callback();
    });
    // hoodiecrow answers SELECT of a missing folder with BAD; servers answer NO [NONEXISTENT] (RFC 5530).
    const select = require('hoodiecrow-imap/lib/commands/select.js') as CommandHandler;
    server.setCommandHandler('SELECT', (connection, parsed, data, callback) => {
      const name = parsed.attributes?.[0]?.value;
      if (name !== undefined && server.getMailbox(name) === undefined) {
        connection.send({ tag: parsed.tag, command: 'NO', attributes: [{ type: 'SECTION', section: [{ type: 'ATOM', value: 'NONEXISTENT' }] }, { type: 'TEXT', value: "Mailbox doesn't exist" }] }, 'SELECT FAILED', parsed, data);
        return callback();
      }
      return select(connection, parsed, data, callback);
    });
    server.setCommandHandler('LOGIN', (connection, parsed, data, callback) => {
      peer.authAttempts.push({ mechanism: 'LOGIN', user: parsed.attributes?.[0]?.value ?? '', outcome: 'refused' });
      connection.send({ tag: parsed.tag, command: 'NO', attributes: [{ type: 'TEXT', value: 'LOGIN failed.' }] }, 'LOGIN FAILED', parsed, data);
      return callback();
    });
  };
}
