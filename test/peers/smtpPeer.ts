import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { SMTPServer, type SMTPServerAddress, type SMTPServerAuthentication, type SMTPServerAuthenticationResponse, type SMTPServerSession } from 'smtp-server';
import { serverTls } from './tls.js';
import type { TokenEndpointPeer } from './tokenEndpoint.js';

/** An SMTP reply the peer sends instead of its normal answer, e.g. `{ code: 535, text: '5.7.139 ...' }`. */
export interface SmtpReply {
  code: number;
  text: string;
  /** How many times the reply is sent before the peer behaves normally again. @default Infinity */
  times?: number;
}

/** Replies to force at each step of a session, as Exchange Online would send them. */
export interface SmtpFailureModes {
  connect?: SmtpReply;
  auth?: SmtpReply;
  mailFrom?: SmtpReply;
  /** Per recipient address: a reply to refuse it with, or undefined to accept it. */
  rcptTo?: (address: string) => SmtpReply | undefined;
  data?: SmtpReply;
  /**
   * After the DATA terminator: keep the message (it counts as accepted and is copied like any
   * other) and then close the connection without a reply, as a server crash or a network cut
   * right after Exchange queued the message does. `times` as for replies. @default never
   */
  dropAfterData?: { times?: number };
  /**
   * While the message's DATA is arriving: close the connection without a reply and keep
   * nothing, as a network cut in the middle of the transfer does. `times` as for replies. @default never
   */
  dropDuringData?: { times?: number };
}

export interface ReceivedMessage {
  /** The SASL user the session authenticated as. */
  user: string;
  envelope: { from: string; to: string[] };
  raw: Buffer;
  /** The id the peer put in its 250 reply. */
  queueId: string;
  /** The TLS the session ran over (implicit, or after STARTTLS), as the server negotiated it; undefined for plain text. */
  tls?: { protocol: string; cipher: string };
}

export interface AuthAttempt {
  method: string;
  user: string;
  accepted: boolean;
  /** The client id the token was issued to, when the token endpoint issued it. */
  clientId?: string;
  reply: string;
}

export interface SmtpPeerOptions {
  /** Bearer tokens are valid when this endpoint issued them, for `audience`. */
  tokens: TokenEndpointPeer;
  /** SASL users that may authenticate (the mailboxes). */
  mailboxes: string[];
  /** @default 'https://outlook.office365.com' */
  audience?: string;
  /** Largest message accepted, bytes (SIZE extension). */
  maxSize?: number;
  /** false: a server without STARTTLS that would take AUTH in plain text (the client must refuse it). @default true */
  startTls?: boolean;
  /** TLS from the first byte, as on port 465 (smtp-server's `secure: true`), with the same certificate; no STARTTLS then. @default false */
  implicitTls?: boolean;
  /** Serve a self-signed certificate that no test trusts instead of the test CA's. @default false */
  untrustedCertificate?: boolean;
}

const REFUSED = '5.7.3 Authentication unsuccessful';

/**
 * An Exchange Online-like submission server on 127.0.0.1:<random>: STARTTLS (or, with
 * `implicitTls`, TLS from the first byte, as on port 465) with the test CA's certificate,
 * AUTH XOAUTH2 only and required, a token accepted only when the token
 * endpoint issued it for the Exchange audience and the SASL user is an allowed mailbox;
 * anything else gets `535 5.7.3 Authentication unsuccessful`, directly, as Exchange answers.
 */
export class SmtpPeer {
  readonly messages: ReceivedMessage[] = [];
  readonly authAttempts: AuthAttempt[] = [];
  /** What the server reported about failed sessions, e.g. "Socket closed while initiating TLS" when a client never starts the handshake. */
  readonly sessionErrors: Error[] = [];
  failures: SmtpFailureModes = {};
  /**
   * Called with each message the peer accepted, before it replies; the reply waits for the
   * promise (a test stops the client there: the message is accepted, the client never hears it).
   */
  onAccepted?: (message: ReceivedMessage) => void | Promise<void>;
  /** Awaited once the whole message has arrived, before the peer decides its reply (a failure armed here applies to this message). */
  beforeDataReply?: () => Promise<void>;
  /** Where each accepted message is also saved, as Exchange saves what a mailbox submits over SMTP in its Sent Items (e.g. an ImapPeer's Sent folder). */
  saveSentCopy?: (raw: Buffer) => void;
  private server?: SMTPServer;
  private port = 0;

  constructor(private readonly options: SmtpPeerOptions) {}

  /** For a profile's `endpoints.smtp`. */
  get endpoint(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    const tls = this.options.untrustedCertificate ? await selfSigned() : serverTls();
    this.server = new SMTPServer({
      secure: this.options.implicitTls === true,
      key: tls.key,
      cert: tls.cert,
      authMethods: ['XOAUTH2'],
      authOptional: false,
      allowInsecureAuth: this.options.startTls === false,
      disabledCommands: this.options.startTls === false ? ['STARTTLS'] : [],
      logger: false,
      size: this.options.maxSize,
      closeTimeout: 1000,
      onConnect: (_session, callback) => callback(this.forced('connect') ?? undefined),
      onAuth: (auth, session, callback) => this.onAuth(auth, session, callback),
      onMailFrom: (_address, _session, callback) => callback(this.forced('mailFrom') ?? undefined),
      onRcptTo: (address, _session, callback) => callback(this.recipientRefusal(address) ?? undefined),
      onData: (stream, session, callback) => this.onData(stream, session, callback),
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => {
        this.server!.off('error', reject);
        // smtp-server emits a session's failure (a client that hangs up before or during the TLS handshake) on the server.
        this.server!.on('error', (error) => this.sessionErrors.push(error));
        resolve();
      });
    });
    this.port = (this.server.server.address() as AddressInfo).port;
    return this;
  }

  /** Ends every open session, as a server does with idle ones: the client's pool must reconnect and authenticate again. */
  closeConnections(): void {
    for (const connection of this.server?.connections ?? []) (connection as { close(): void }).close();
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    this.closeConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /** Auth attempts the peer refused. */
  refusedAuths(): AuthAttempt[] {
    return this.authAttempts.filter((a) => !a.accepted);
  }

  private forced(step: Exclude<keyof SmtpFailureModes, 'rcptTo' | 'dropAfterData' | 'dropDuringData'>): Error | undefined {
    const reply = this.failures[step];
    if (!reply) return undefined;
    if (reply.times !== undefined) {
      if (reply.times <= 0) return undefined;
      reply.times--;
    }
    return replyError(reply);
  }

  private recipientRefusal(address: SMTPServerAddress): Error | undefined {
    const reply = this.failures.rcptTo?.(address.address);
    return reply ? replyError(reply) : undefined;
  }

  private onAuth(auth: SMTPServerAuthentication, _session: SMTPServerSession, callback: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void): void {
    const user = auth.username ?? '';
    const record = (accepted: boolean, reply: string, clientId?: string) => this.authAttempts.push({ method: auth.method, user, accepted, clientId, reply });
    const forced = this.forced('auth');
    if (forced) {
      record(false, forced.message);
      return callback(forced);
    }
    const issued = auth.method === 'XOAUTH2' ? this.options.tokens.validate(auth.accessToken ?? '', this.options.audience ?? 'https://outlook.office365.com') : undefined;
    const mailboxAllowed = this.options.mailboxes.some((m) => m.toLowerCase() === user.toLowerCase());
    if (!issued || !mailboxAllowed) {
      record(false, REFUSED, issued?.clientId);
      return callback(replyError({ code: 535, text: REFUSED }));
    }
    record(true, 'Authentication successful', issued.clientId);
    callback(null, { user });
  }

  private onData(stream: Readable, session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): void {
    const chunks: Buffer[] = [];
    if (this.take(this.failures.dropDuringData)) {
      stream.once('data', () => this.connectionOf(session)?.close());
      stream.resume();
      return;
    }
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', (error) => callback(error));
    stream.on('end', () => void this.replyToData(chunks, session, callback));
  }

  private async replyToData(chunks: Buffer[], session: SMTPServerSession, callback: (err?: Error | null, message?: string) => void): Promise<void> {
    await this.beforeDataReply?.();
    const forced = this.forced('data');
    if (forced) return callback(forced);
    const queueId = randomBytes(8).toString('hex').toUpperCase();
    const message: ReceivedMessage = {
      user: String(session.user ?? ''),
      envelope: {
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
        to: session.envelope.rcptTo.map((r) => r.address),
      },
      raw: Buffer.concat(chunks),
      queueId,
      tls: session.secure ? negotiated(session) : undefined,
    };
    this.messages.push(message);
    this.saveSentCopy?.(message.raw);
    void Promise.resolve(this.onAccepted?.(message)).then(() => {
      if (this.take(this.failures.dropAfterData)) return this.connectionOf(session)?.close();
      callback(null, `2.0.0 OK <${queueId}@smtp-peer.test> [Hostname=smtp-peer.test]`);
    });
  }

  private take(drop: { times?: number } | undefined): boolean {
    if (!drop) return false;
    if (drop.times !== undefined) {
      if (drop.times <= 0) return false;
      drop.times--;
    }
    return true;
  }

  /** smtp-server's connection of a session; close() ends its socket without a reply. */
  private connectionOf(session: SMTPServerSession): { close(): void } | undefined {
    return [...(this.server?.connections ?? [])].find((c) => (c as { id?: string }).id === session.id) as { close(): void } | undefined;
  }
}

function negotiated(session: SMTPServerSession): { protocol: string; cipher: string } {
  const cipher = session.tlsOptions as unknown as { name?: string; version?: string } | false;
  return { protocol: (cipher && cipher.version) || 'unknown', cipher: (cipher && cipher.name) || 'unknown' };
}

async function selfSigned(): Promise<{ key: string; cert: string }> {
  const selfsigned = require('selfsigned') as typeof import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  return { key: pems.private, cert: pems.cert };
}

function replyError(reply: SmtpReply): Error {
  return Object.assign(new Error(reply.text), { responseCode: reply.code });
}
