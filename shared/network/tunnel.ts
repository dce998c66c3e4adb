import http from 'node:http';
import https from 'node:https';
import { isIP, type Socket } from 'node:net';
import { proxyAuthorization, proxyLabel, type ConnectTarget, type ProxyRoute } from './proxy.js';
import { ProxyFailure } from './proxyErrors.js';

export interface TunnelOptions {
  abortSignal?: AbortSignal;
  /** How long the proxy may take to connect and answer CONNECT. @default 30_000 */
  timeoutMs?: number;
}

/**
 * A TCP tunnel through the proxy to the target: node:http's own CONNECT (an https proxy is
 * reached over TLS, its certificate checked). The socket carries whatever the caller speaks next,
 * TLS included; the proxy sees only the target's host and port. A proxy that answers anything but
 * 2xx, or cannot be reached, fails with ProxyFailure (code EPROXY), never as if the target had
 * answered: https-proxy-agent hands a refusal to the HTTP client as the target's own response,
 * so a proxy's 403 would read as Key Vault refusing access.
 */
export function openTunnel(route: ProxyRoute, target: ConnectTarget, options: TunnelOptions = {}): Promise<Socket> {
  const server = route.server;
  const authority = `${isIP(target.host) === 6 ? `[${target.host}]` : target.host}:${target.port}`;
  const label = proxyLabel(server);
  const authorization = proxyAuthorization(route);
  return new Promise<Socket>((resolve, reject) => {
    options.abortSignal?.throwIfAborted();
    const request = (server.protocol === 'https:' ? https : http).request({
      host: server.host,
      port: server.port,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...(authorization !== undefined && { 'proxy-authorization': authorization }) },
      agent: false,
      timeout: options.timeoutMs ?? 30_000,
      ...(server.protocol === 'https:' && isIP(server.host) === 0 && { servername: server.host }),
    });
    let settled = false;
    const fail = (error: Error) => {
      if (settled) return;
      settled = true;
      options.abortSignal?.removeEventListener('abort', abort);
      request.destroy();
      reject(error);
    };
    const abort = () => fail(options.abortSignal!.reason instanceof Error ? options.abortSignal!.reason : new Error('aborted'));
    options.abortSignal?.addEventListener('abort', abort, { once: true });
    request.once('connect', (response, socket, head) => {
      const status = response.statusCode ?? 0;
      if (status < 200 || status > 299) {
        socket.destroy();
        fail(new ProxyFailure(label, authority, status));
        return;
      }
      settled = true;
      options.abortSignal?.removeEventListener('abort', abort);
      socket.setTimeout(0);
      // Bytes the proxy sent after its answer (a server greeting) belong to the caller.
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    request.once('timeout', () => fail(new ProxyFailure(label, authority, undefined, 'ETIMEDOUT')));
    request.once('error', (error: NodeJS.ErrnoException) => fail(new ProxyFailure(label, authority, undefined, error.code ?? error.message)));
    request.end();
  });
}
