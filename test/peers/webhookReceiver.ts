import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedHook {
  headers: IncomingHttpHeaders;
  body: string;
  /** The status this peer answered with. */
  status: number;
  /** Milliseconds (Date.now scale, sub-millisecond precision) when the request had arrived whole. */
  receivedAt: number;
}

export interface ScriptedAnswer {
  status: number;
  /** Waits this long before answering (to exceed the sender's timeout). */
  delayMs?: number;
  headers?: Record<string, string>;
  /** A reply body of this many bytes, written as the client reads it (instead of a small JSON). */
  bodyBytes?: number;
}

/**
 * A webhook consumer on http://127.0.0.1:<port>/hooks/mail. It records every POST and answers
 * from a script (then 200), and checks signatures the way the README tells consumers to:
 * recompute HMAC-SHA256 over `<timestamp>.<body>` with the shared secret, compare in constant time.
 */
export class WebhookReceiverPeer {
  readonly received: ReceivedHook[] = [];
  /** Per answered request, the reply body bytes the client took before the connection ended. */
  readonly replyBytesTaken: number[] = [];
  /** Called with each request once its answer was written whole (a test stops the client there: the consumer has it, the client may not have heard). */
  onAnswered?: (hook: ReceivedHook) => void;
  private readonly script: ScriptedAnswer[] = [];
  private server?: Server;
  private port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/mail`;
  }

  /** Answers the next requests with these, in order; afterwards 200. */
  answer(...answers: ScriptedAnswer[]): void {
    this.script.push(...answers);
  }

  reset(): void {
    this.received.length = 0;
    this.replyBytesTaken.length = 0;
    this.script.length = 0;
  }

  /** The parsed JSON bodies of the requests answered 2xx. */
  accepted<T = Record<string, unknown>>(): T[] {
    return this.received.filter((r) => r.status < 300).map((r) => JSON.parse(r.body) as T);
  }

  static verify(hook: ReceivedHook, secret: string): boolean {
    const timestamp = hook.headers['x-mail-timestamp'];
    const signature = hook.headers['x-mail-signature'];
    if (typeof timestamp !== 'string' || typeof signature !== 'string' || !/^\d+$/.test(timestamp)) return false;
    const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${hook.body}`).digest('hex')}`);
    const given = Buffer.from(signature);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answer = req.method === 'POST' && req.url === '/hooks/mail' ? (this.script.shift() ?? { status: 200 }) : { status: 404 };
        const hook: ReceivedHook = { headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), status: answer.status, receivedAt: performance.timeOrigin + performance.now() };
        this.received.push(hook);
        res.once('finish', () => this.onAnswered?.(hook));
        const reply = () => {
          if (res.destroyed) return;
          res.writeHead(answer.status, { 'Content-Type': 'application/json', ...answer.headers });
          if (answer.bodyBytes === undefined) return void res.end(JSON.stringify({ status: answer.status }));
          const slot = this.replyBytesTaken.push(0) - 1;
          const chunk = Buffer.alloc(64 * 1024, 'x');
          let left = answer.bodyBytes;
          const pump = () => {
            while (left > 0 && !res.destroyed) {
              left -= chunk.length;
              const more = res.write(chunk, () => (this.replyBytesTaken[slot]! += chunk.length));
              if (!more) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
        };
        if (answer.delayMs) setTimeout(reply, answer.delayMs).unref();
        else reply();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
