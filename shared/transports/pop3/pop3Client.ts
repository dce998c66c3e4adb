import { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';

/**
 * A minimal POP3 client over implicit TLS: RFC 1939 (UIDL, LIST, RETR, DELE, QUIT), RFC 2449
 * (CAPA) and RFC 5034 (AUTH with a SASL mechanism), enough for Exchange Online's XOAUTH2.
 *
 * Written here because no npm POP3 client fits, as checked for this project (2025):
 * node-pop3 0.11 (the most used) and yapople 0.4 offer USER/PASS only, no AUTH or SASL; both
 * read a response as whatever one socket chunk holds (node-pop3 checks the terminator only at
 * a chunk's end, so a `\r\n.\r\n` split across chunks hangs it), neither undoes dot-stuffing,
 * and yapople buffers every message whole. poplib and mailpop3 are unmaintained for a decade.
 *
 * One command at a time (no PIPELINING). A RETR answer is a stream: the next command waits
 * until it has ended; a stream abandoned midway is drained so the session stays in step.
 */
export interface Pop3ClientOptions {
  host: string;
  port: number;
  /**
   * Closes the connection when an awaited answer stops arriving for this long. Idle time
   * between commands (while the caller delivers a message) does not count. @default 60_000
   */
  answerTimeoutMs?: number;
  abortSignal?: AbortSignal;
  /** Opens a socket already connected to the server (a proxy's tunnel); TLS is started over it. Default: a direct connection. */
  tunnel?: () => Promise<Socket>;
}

/** A `-ERR` answer. `command` is the verb only: an AUTH payload never reaches an error. */
export class Pop3CommandError extends Error {
  constructor(
    readonly command: string,
    readonly response: string,
  ) {
    super(`${command}: -ERR ${response}`);
    this.name = 'Pop3CommandError';
  }

  /** The RFC 2449 / RFC 3206 response code in brackets, e.g. SYS/TEMP, IN-USE, LOGIN-DELAY, AUTH. */
  get responseCode(): string | undefined {
    return /^\[([^\]]+)\]/.exec(this.response)?.[1]?.toUpperCase();
  }
}

export interface UidlEntry {
  number: number;
  uid: string;
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
/** A status line is at most 512 octets (RFC 2449 section 4); more means the peer is not POP3. */
const MAX_STATUS_LINE = 8192;
/**
 * Bounds on the answers that are read whole (CAPA, UIDL, LIST): a line of a listing is a
 * number and a unique-id of at most 70 characters (RFC 1939 section 7), a capability a short
 * keyword list. 32 MiB of UIDL is some 400,000 messages. RETR is never read whole: it streams.
 */
export const MULTI_LINE_LIMITS = {
  CAPA: { bytes: 64 * 1024, line: 1024 },
  UIDL: { bytes: 32 * 1024 * 1024, line: 1024 },
  LIST: { bytes: 32 * 1024 * 1024, line: 1024 },
} as const;

type Consumer =
  | { kind: 'line'; resolve: (line: string) => void; reject: (error: Error) => void }
  | { kind: 'body'; decoder: DotDecoder; push: (chunk: Buffer) => boolean; end: () => void; fail: (error: Error) => void };

export class Pop3Client {
  private pending: Buffer = Buffer.alloc(0);
  private consumer?: Consumer;
  private failure?: Error;
  /** Commands run one after another: each waits for the previous one's whole answer. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly socket: TLSSocket,
    private readonly answerTimeoutMs: number,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
      this.pump();
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(Object.assign(new Error('the POP3 server closed the connection'), { code: 'ECONNRESET' })));
    socket.on('timeout', () => socket.destroy(Object.assign(new Error('the POP3 server did not answer in time'), { code: 'ETIMEDOUT' })));
  }

  /** Opens the TLS connection and reads the greeting. */
  static async connect(options: Pop3ClientOptions): Promise<Pop3Client> {
    options.abortSignal?.throwIfAborted();
    const tunnel = await options.tunnel?.();
    const socket = tlsConnect({ host: options.host, port: options.port, servername: isIp(options.host) ? undefined : options.host, ...(tunnel !== undefined && { socket: tunnel }) });
    const client = new Pop3Client(socket, options.answerTimeoutMs ?? 60_000);
    const abort = () => socket.destroy(Object.assign(new Error('aborted'), { code: 'ABORT_ERR' }));
    options.abortSignal?.addEventListener('abort', abort, { once: true });
    socket.once('close', () => options.abortSignal?.removeEventListener('abort', abort));
    try {
      await client.status('greeting', await client.readLine());
      return client;
    } catch (error) {
      socket.destroy();
      throw error;
    }
  }

  /** CAPA (RFC 2449): capability lines, e.g. ["TOP", "UIDL", "SASL PLAIN XOAUTH2"]. */
  capabilities(): Promise<string[]> {
    return this.serial(async () => {
      await this.command('CAPA', 'CAPA');
      return (await this.readMultiLine('CAPA')).filter((l) => l.length > 0);
    });
  }

  /**
   * AUTH XOAUTH2 as Exchange Online documents it: the command alone, then the base64 of
   * `user=<mailbox>^Aauth=Bearer <token>^A^A` as the answer to the server's `+` continuation.
   * A server that refuses may first send a `+` with an error payload (Gmail does); the empty
   * answer RFC 5034 prescribes ends the exchange and the `-ERR` follows.
   */
  authenticateXoauth2(user: string, accessToken: string): Promise<void> {
    return this.serial(async () => {
      await this.write('AUTH XOAUTH2\r\n');
      let line = await this.readLine();
      if (!isContinuation(line)) return void this.status('AUTH', line);
      await this.write(`${Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64')}\r\n`);
      line = await this.readLine();
      if (isContinuation(line)) {
        await this.write('\r\n');
        line = await this.readLine();
      }
      this.status('AUTH', line);
    });
  }

  uidl(): Promise<UidlEntry[]> {
    return this.serial(async () => {
      await this.command('UIDL', 'UIDL');
      return (await this.readMultiLine('UIDL')).filter((l) => l.length > 0).map((l) => {
        const [number, uid] = l.split(/\s+/);
        if (!number || !uid || !/^\d+$/.test(number)) throw new Pop3CommandError('UIDL', `unexpected line "${l}"`);
        return { number: Number(number), uid };
      });
    });
  }

  /** LIST: message number -> size in octets. */
  list(): Promise<Map<number, number>> {
    return this.serial(async () => {
      await this.command('LIST', 'LIST');
      const sizes = new Map<number, number>();
      for (const l of await this.readMultiLine('LIST')) {
        const match = /^(\d+)\s+(\d+)/.exec(l);
        if (match) sizes.set(Number(match[1]), Number(match[2]));
      }
      return sizes;
    });
  }

  /** RETR, as a stream of the message's bytes with the dot-stuffing undone and the terminator removed. */
  retrieve(messageNumber: number): Promise<Readable> {
    return new Promise<Readable>((resolveStream, rejectStream) => {
      const done = this.serial(async () => {
        await this.command('RETR', `RETR ${messageNumber}`);
        let discard = false;
        const stream = new Readable({
          read: () => this.resume(),
          destroy: (error, callback) => {
            // The answer keeps coming; it is read to its end so that the next command lines up.
            discard = true;
            this.resume();
            callback(error);
          },
        });
        await new Promise<void>((resolve, reject) => {
          this.consumer = {
            kind: 'body',
            decoder: new DotDecoder(),
            push: (chunk) => discard || stream.push(chunk),
            end: () => {
              if (!discard) stream.push(null);
              resolve();
            },
            fail: (error) => {
              if (!discard) stream.destroy(error);
              reject(error);
            },
          };
          resolveStream(stream);
          this.pump();
        });
      });
      done.catch(rejectStream);
    });
  }

  /** DELE: marks the message; the server removes it only when QUIT ends the session normally. */
  delete(messageNumber: number): Promise<void> {
    return this.serial(async () => {
      await this.command('DELE', `DELE ${messageNumber}`);
    });
  }

  /** QUIT: commits DELEs (RFC 1939 UPDATE state) and closes. */
  quit(): Promise<void> {
    return this.serial(async () => {
      await this.command('QUIT', 'QUIT');
      this.socket.end();
    });
  }

  /** Drops the connection without QUIT: marked deletions are not applied. */
  close(): void {
    this.socket.destroy();
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async command(verb: string, line: string): Promise<string> {
    await this.write(`${line}\r\n`);
    return this.status(verb, await this.readLine());
  }

  private status(verb: string, line: string): string {
    if (line.startsWith('+OK')) return line.slice(3).trim();
    if (line.startsWith('-ERR')) throw new Pop3CommandError(verb, line.slice(4).trim());
    throw new Pop3CommandError(verb, `unexpected answer "${line.slice(0, 80)}"`);
  }

  private write(data: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => this.socket.write(data, (error) => (error ? reject(error) : resolve())));
  }

  private readLine(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.consumer = { kind: 'line', resolve, reject };
      this.pump();
    });
  }

  /**
   * A multi-line answer read whole, within MULTI_LINE_LIMITS: past the byte bound the connection
   * is dropped (the rest of the answer cannot be skipped in step) and the command fails, so a
   * server that never ends its answer cannot grow memory without end.
   */
  private async readMultiLine(verb: keyof typeof MULTI_LINE_LIMITS): Promise<string[]> {
    if (this.failure) throw this.failure;
    const limit = MULTI_LINE_LIMITS[verb];
    const chunks: Buffer[] = [];
    let bytes = 0;
    await new Promise<void>((resolve, reject) => {
      const push = (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > limit.bytes) {
          this.socket.destroy(new Pop3CommandError(verb, `the answer is over ${limit.bytes} bytes: the server does not answer as POP3 does`));
          return false;
        }
        chunks.push(chunk);
        return true;
      };
      this.consumer = { kind: 'body', decoder: new DotDecoder(), push, end: resolve, fail: reject };
      this.pump();
    });
    const text = Buffer.concat(chunks).toString('utf8');
    const lines = text.split('\r\n').slice(0, text.endsWith('\r\n') ? -1 : undefined);
    const long = lines.find((l) => l.length > limit.line);
    if (long !== undefined) throw new Pop3CommandError(verb, `a line of the answer is over ${limit.line} characters: "${long.slice(0, 40)}..."`);
    return lines;
  }

  /** The timeout runs only while an answer is awaited and the socket is flowing. */
  private awaiting(on: boolean): void {
    this.socket.setTimeout(on ? this.answerTimeoutMs : 0);
  }

  private pump(): void {
    this.awaiting(this.consumer !== undefined);
    while (this.consumer && this.pending.length > 0) {
      const consumer = this.consumer;
      if (consumer.kind === 'line') {
        const end = this.pending.indexOf('\r\n');
        if (end < 0) {
          if (this.pending.length > MAX_STATUS_LINE) this.socket.destroy(new Error('the POP3 server sent an overlong status line'));
          return;
        }
        const line = this.pending.subarray(0, end).toString('utf8');
        this.pending = this.pending.subarray(end + 2);
        this.consumer = undefined;
        this.awaiting(false);
        consumer.resolve(line);
        return;
      }
      const { output, rest } = consumer.decoder.feed(this.pending);
      this.pending = rest ?? Buffer.alloc(0);
      let wantsMore = true;
      for (const chunk of output) wantsMore = consumer.push(chunk) && wantsMore;
      if (rest !== undefined) {
        this.consumer = undefined;
        this.awaiting(false);
        consumer.end();
        return;
      }
      if (!wantsMore) {
        this.socket.pause();
        this.awaiting(false);
      }
    }
  }

  private resume(): void {
    if (this.consumer) this.awaiting(true);
    this.socket.resume();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    const consumer = this.consumer;
    this.consumer = undefined;
    if (consumer?.kind === 'line') consumer.reject(this.failure);
    else consumer?.fail(this.failure);
  }
}

function isContinuation(line: string): boolean {
  return line === '+' || line.startsWith('+ ');
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/**
 * Undoes RFC 1939 byte-stuffing of a multi-line answer as it streams: a line that starts with
 * "." lost that dot, and the line "." alone ends the answer. Lines end at CRLF only; works on
 * any chunking, including a terminator split across chunks, without buffering whole lines.
 */
export class DotDecoder {
  private state: 'lineStart' | 'dot' | 'dotCR' | 'inLine' = 'lineStart';
  private lastWasCR = false;

  /** Returns the decoded pieces, and `rest` (what follows the terminator) once the answer ended. */
  feed(chunk: Buffer): { output: Buffer[]; rest?: Buffer } {
    const output: Buffer[] = [];
    let start = 0;
    let i = 0;
    while (i < chunk.length) {
      switch (this.state) {
        case 'lineStart':
          if (chunk[i] === DOT) {
            if (i > start) output.push(chunk.subarray(start, i));
            i++;
            start = i;
            this.state = 'dot';
          } else {
            this.state = 'inLine';
          }
          break;
        case 'dot':
          if (chunk[i] === CR) {
            i++;
            start = i;
            this.state = 'dotCR';
          } else {
            this.state = 'inLine';
          }
          break;
        case 'dotCR':
          if (chunk[i] === LF) return { output, rest: chunk.subarray(i + 1) };
          // ".\r" then something else: the dot was stuffing for a line that starts with a bare CR.
          output.push(Buffer.from([CR]));
          this.lastWasCR = true;
          this.state = 'inLine';
          break;
        case 'inLine': {
          const lf = chunk.indexOf(LF, i);
          if (lf < 0) {
            this.lastWasCR = chunk[chunk.length - 1] === CR;
            i = chunk.length;
            break;
          }
          const crBefore = lf > 0 ? chunk[lf - 1] === CR : this.lastWasCR;
          this.lastWasCR = false;
          i = lf + 1;
          if (crBefore) this.state = 'lineStart';
          break;
        }
      }
    }
    if (i > start) output.push(chunk.subarray(start, i));
    return { output };
  }
}
