import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { serverTls } from './tls.js';

export interface LoopbackHttpsServer {
  /** https://127.0.0.1:<port> */
  url: string;
  stop(): Promise<void>;
}

/**
 * An HTTPS server on 127.0.0.1 and a free port, serving the test CA's loopback certificate,
 * for the HTTP peers (token endpoint, Key Vault, Graph). A handler that throws is answered
 * by `onError`, so a peer bug shows up as a 500 the client reports, not as a hung request.
 */
export async function listenHttps(
  handler: (req: IncomingMessage, res: ServerResponse) => Promise<void>,
  onError: (res: ServerResponse, error: unknown) => void,
): Promise<LoopbackHttpsServer> {
  const tls = serverTls();
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    handler(req, res).catch((error: unknown) => onError(res, error));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${port}`,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** An answer an HTTP peer gives instead of its own, as an outage would: a status, or no answer for a while. */
export interface HttpFault {
  /** Answered with this status and the peer's error body. @default 503 */
  status?: number;
  /** Holds the request this long first (past the client's timeout: a hang); then answers `status`. */
  delayMs?: number;
  /** How many matching requests get it. @default 1 */
  times?: number;
  /** Only requests whose `METHOD path` matches. Default: every request. */
  match?: RegExp;
}

/** Base of the HTTP peers: started on a free loopback port, stopped with all connections closed. */
export abstract class HttpsPeer {
  private server?: LoopbackHttpsServer;
  private faults: Array<HttpFault & { remaining: number }> = [];
  /** Requests answered by an injected fault. */
  faulted = 0;

  /** The next matching requests get this answer instead of the peer's (see HttpFault). */
  inject(fault: HttpFault): void {
    this.faults.push({ ...fault, remaining: fault.times ?? 1 });
  }

  clearFaults(): void {
    this.faults = [];
  }

  get url(): string {
    if (!this.server) throw new Error(`${this.constructor.name} is not started`);
    return this.server.url;
  }

  async start(): Promise<this> {
    this.server = await listenHttps(
      (req, res) => this.faultFor(req, res) ?? this.handle(req, res),
      (res, error) => sendJson(res, 500, this.errorBody(error)),
    );
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  private faultFor(req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
    const fault = this.faults.find((f) => f.remaining > 0 && (f.match === undefined || f.match.test(`${req.method} ${req.url}`)));
    if (!fault) return undefined;
    fault.remaining--;
    this.faulted++;
    return readBody(req).then(async () => {
      if (fault.delayMs) await new Promise((resolve) => setTimeout(resolve, fault.delayMs).unref());
      if (!res.destroyed) sendJson(res, fault.status ?? 503, this.errorBody(new Error('injected fault')));
    });
  }

  protected abstract handle(req: IncomingMessage, res: ServerResponse): Promise<void>;

  /** The 500 body when `handle` throws, in the shape the peer's clients parse. */
  protected abstract errorBody(error: unknown): unknown;
}
