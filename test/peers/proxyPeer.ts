import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { createProxy } from 'proxy';

/** One CONNECT the proxy was asked for, and what it answered. */
export interface TunnelRecord {
  /** host:port as the CONNECT request line named it. */
  target: string;
  port: number;
  /** 200 (opened), 403 (port not allowed) or 407 (no or wrong credentials). */
  status: number;
  /** The user of the Proxy-Authorization header, if one came. */
  user?: string;
}

export interface ProxyPeerOptions {
  /** Basic credentials the proxy wants; without them every tunnel is allowed. */
  credentials?: { user: string; password: string };
}

/**
 * An HTTP proxy on 127.0.0.1 for the tests: TooTallNate's `proxy` (the server Squid-like proxies
 * are tested against) does the tunnelling; this records every CONNECT with its answer, asks for
 * Basic credentials (407) when given some, and refuses tunnels to denied ports with 403, as a
 * corporate proxy's ACL does. Plain (absolute-URI) requests are recorded too: the app makes none.
 */
export class ProxyPeer {
  readonly tunnels: TunnelRecord[] = [];
  readonly plainRequests: string[] = [];
  /** Ports CONNECT is refused to (403). */
  readonly deniedPorts = new Set<number>();
  private readonly server: Server = createServer();
  private readonly sockets = new Set<Socket>();

  constructor(private readonly options: ProxyPeerOptions = {}) {
    createProxy(this.server);
    const tunnel = this.server.listeners('connect') as Array<(req: IncomingMessage, socket: Socket, head: Buffer) => void>;
    this.server.removeAllListeners('connect');
    this.server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const target = req.url ?? '';
      const port = Number(/:(\d+)$/.exec(target)?.[1] ?? 0);
      const user = basicUser(req.headers['proxy-authorization']);
      const record = (status: number) => this.tunnels.push({ target, port, status, ...(user !== undefined && { user: user.name }) });
      const wanted = this.options.credentials;
      if (wanted && (user?.name !== wanted.user || user.password !== wanted.password)) {
        record(407);
        socket.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="proxy"\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (this.deniedPorts.has(port)) {
        record(403);
        socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      record(200);
      for (const listener of tunnel) listener.call(this.server, req, socket, head);
    });
    this.server.prependListener('request', (req: IncomingMessage) => this.plainRequests.push(`${req.method} ${req.url}`));
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** http://127.0.0.1:<port>, with `user@` when given. */
  url(user?: string): string {
    return `http://${user === undefined ? '' : `${user}@`}127.0.0.1:${this.port}`;
  }

  /** The tunnels opened (status 200) to a port. */
  openedTo(port: number): TunnelRecord[] {
    return this.tunnels.filter((t) => t.port === port && t.status === 200);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function basicUser(header: string | undefined): { name: string; password: string } | undefined {
  const encoded = /^Basic\s+(\S+)$/i.exec(header ?? '')?.[1];
  if (encoded === undefined) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString();
  const colon = decoded.indexOf(':');
  return colon < 0 ? { name: decoded, password: '' } : { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
