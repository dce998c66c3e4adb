import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { serverTls } from './tls.js';
import type { TokenEndpointPeer } from './tokenEndpoint.js';

/**
 * A POP3 server over implicit TLS on 127.0.0.1:<port> serving one mailbox as Exchange Online
 * does: CAPA advertises `SASL XOAUTH2` and nothing else to log in with; `AUTH XOAUTH2` takes
 * the SASL string on the continuation line and accepts only a token the TokenEndpointPeer
 * issued for the Exchange audience; then STAT, LIST, UIDL, RETR (dot-stuffed), DELE, RSET,
 * NOOP and QUIT (deletions applied only there), per RFC 1939 / 2449 / 5034.
 */
export interface Pop3PeerOptions {
  mailbox: string;
  /** @default https://outlook.office365.com */
  audience?: string;
  /** App (client) ids granted access to the mailbox; undefined grants every app. */
  grantedClients?: string[];
  /** Writes answers in pieces of this many bytes, to exercise a client's reassembly. */
  chunkBytes?: number;
  /** Serve a fresh self-signed certificate, which no test trusts. */
  untrustedCertificate?: boolean;
}

export interface Pop3AuthAttempt {
  mechanism: string;
  user: string;
  outcome: 'ok' | 'refused';
}

interface StoredMessage {
  uid: string;
  raw: Buffer;
}

const EXCHANGE_AUDIENCE = 'https://outlook.office365.com';

export class Pop3Peer {
  readonly authAttempts: Pop3AuthAttempt[] = [];
  /** Command lines received; the AUTH payload line is recorded as "(sasl payload)". */
  readonly commands: string[] = [];
  private readonly store: StoredMessage[] = [];
  private quitsToDrop = 0;
  private server?: Server;
  private readonly sockets = new Set<TLSSocket>();
  private port = 0;

  constructor(
    private readonly entra: TokenEndpointPeer,
    private readonly options: Pop3PeerOptions,
  ) {}

  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Adds a message; returns its UIDL. */
  add(raw: Buffer | string): string {
    const uid = `AQ${randomBytes(9).toString('hex')}`;
    this.store.push({ uid, raw: crlfLines(typeof raw === 'string' ? Buffer.from(raw) : raw) });
    return uid;
  }

  uids(): string[] {
    return this.store.map((m) => m.uid);
  }

  /** The maildrop as stored (deletions applied at QUIT only), oldest first. */
  messages(): Array<{ uid: string; raw: Buffer }> {
    return this.store.map((m) => ({ uid: m.uid, raw: m.raw }));
  }

  /** The next QUIT gets no answer: the connection drops, so the session never enters UPDATE and its deletions are discarded (RFC 1939 6). */
  dropNextQuit(): void {
    this.quitsToDrop++;
  }

  async start(): Promise<this> {
    const tls = this.options.untrustedCertificate ? await selfSigned() : serverTls();
    this.server = createServer({ key: tls.key, cert: tls.cert }, (socket) => this.session(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server?.listening) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private accepts(user: string, token: string): boolean {
    if (user.toLowerCase() !== this.options.mailbox.toLowerCase()) return false;
    const issued = this.entra.validate(token, this.options.audience ?? EXCHANGE_AUDIENCE);
    return issued !== undefined && (this.options.grantedClients === undefined || this.options.grantedClients.includes(issued.clientId));
  }

  private session(socket: TLSSocket): void {
    this.sockets.add(socket);
    // Answers go out in several writes (status line, then body); Nagle would hold the later ones for the client's delayed ACK.
    socket.setNoDelay(true);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const write = (data: Buffer | string) => {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
      const size = this.options.chunkBytes ?? bytes.length;
      for (let i = 0; i < bytes.length; i += size) socket.write(bytes.subarray(i, i + size));
    };
    const ok = (text: string) => write(`+OK ${text}\r\n`);
    const err = (text: string) => write(`-ERR ${text}\r\n`);
    const multi = (lines: string[]) => write(`${lines.map((l) => `${l}\r\n`).join('')}.\r\n`);

    let state: 'authorization' | 'sasl' | 'transaction' = 'authorization';
    // The maildrop as this session sees it: numbers fixed at login, deletions pending until QUIT.
    let drop: StoredMessage[] = [];
    const deleted = new Set<number>();
    const message = (arg: string | undefined): StoredMessage | undefined => {
      const n = Number(arg);
      return Number.isInteger(n) && n >= 1 && n <= drop.length && !deleted.has(n) ? drop[n - 1] : undefined;
    };

    const handle = (line: string) => {
      if (state === 'sasl') {
        this.commands.push('(sasl payload)');
        state = 'authorization';
        const fields = Buffer.from(line, 'base64').toString('utf8').split('\x01');
        const user = /^user=(.+)$/.exec(fields[0] ?? '')?.[1] ?? '';
        const token = /^auth=Bearer (.+)$/.exec(fields[1] ?? '')?.[1] ?? '';
        const accepted = fields.length === 4 && fields[2] === '' && fields[3] === '' && this.accepts(user, token);
        this.authAttempts.push({ mechanism: 'XOAUTH2', user, outcome: accepted ? 'ok' : 'refused' });
        if (!accepted) return err('Authentication failed.');
        state = 'transaction';
        drop = [...this.store];
        return ok('User successfully authenticated.');
      }
      this.commands.push(line);
      const [verb = '', ...args] = line.split(' ');
      switch (verb.toUpperCase()) {
        case 'CAPA':
          ok('');
          return multi(['TOP', 'UIDL', 'SASL XOAUTH2']);
        case 'QUIT':
          if (this.quitsToDrop > 0) {
            this.quitsToDrop--;
            return socket.destroy();
          }
          if (state === 'transaction') {
            const gone = new Set([...deleted].map((n) => drop[n - 1]));
            for (let i = this.store.length - 1; i >= 0; i--) if (gone.has(this.store[i])) this.store.splice(i, 1);
          }
          ok('Microsoft Exchange Server POP3 server signing off.');
          return socket.end();
        case 'NOOP':
          return ok('');
      }
      if (state === 'authorization') {
        if (verb.toUpperCase() === 'AUTH' && args[0]?.toUpperCase() === 'XOAUTH2' && args.length === 1) {
          state = 'sasl';
          return write('+ \r\n');
        }
        if (verb.toUpperCase() === 'AUTH' || verb.toUpperCase() === 'USER' || verb.toUpperCase() === 'PASS') {
          this.authAttempts.push({ mechanism: `${verb} ${args[0] ?? ''}`.trim().toUpperCase(), user: '', outcome: 'refused' });
        }
        return err('Authentication failed.');
      }
      const live = drop.map((m, i) => ({ n: i + 1, m })).filter(({ n }) => !deleted.has(n));
      switch (verb.toUpperCase()) {
        case 'STAT':
          return ok(`${live.length} ${live.reduce((sum, { m }) => sum + m.raw.length, 0)}`);
        case 'LIST':
          if (args[0] !== undefined) {
            const m = message(args[0]);
            return m ? ok(`${args[0]} ${m.raw.length}`) : err('No such message.');
          }
          ok(`${live.length} messages`);
          return multi(live.map(({ n, m }) => `${n} ${m.raw.length}`));
        case 'UIDL':
          if (args[0] !== undefined) {
            const m = message(args[0]);
            return m ? ok(`${args[0]} ${m.uid}`) : err('No such message.');
          }
          ok('');
          return multi(live.map(({ n, m }) => `${n} ${m.uid}`));
        case 'RETR': {
          const m = message(args[0]);
          if (!m) return err('No such message.');
          ok(`${m.raw.length} octets`);
          return write(dotStuff(m.raw));
        }
        case 'DELE': {
          const m = message(args[0]);
          if (!m) return err('No such message.');
          deleted.add(Number(args[0]));
          return ok('Message marked for deletion.');
        }
        case 'RSET':
          deleted.clear();
          return ok('');
        default:
          return err('Protocol error. Unknown command.');
      }
    };

    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        handle(line);
      }
    });
    ok('The Microsoft Exchange POP3 service is ready.');
  }
}

async function selfSigned(): Promise<{ key: string; cert: string }> {
  const selfsigned = require('selfsigned') as typeof import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  return { key: pems.private, cert: pems.cert };
}

/**
 * A multi-line answer is made of CRLF-terminated lines (RFC 1939 3), so a server holding a
 * message with bare LF line ends sends each as CRLF and counts it as two octets in LIST and
 * STAT (RFC 1939 11), as Dovecot does. Sent as stored instead, the last line's LF is followed
 * by the CRLF that must precede the terminating ".", which the client then rightly keeps as
 * part of the message: an empty line the sender never wrote.
 */
export function crlfLines(raw: Buffer): Buffer {
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

/** RFC 1939 3: a line starting with "." gets another "."; the answer ends with CRLF "." CRLF. */
export function dotStuff(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const body = text.replace(/(^|\r\n)\./g, '$1..');
  return Buffer.from(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.\r\n`, 'latin1');
}
