import { isIP, type Socket } from 'node:net';
import tls from 'node:tls';
import type { Agent as UndiciAgent } from 'undici';
import type { ProxyRoute, ProxyRouter } from './proxy.js';
import { ProxyFailure } from './proxyErrors.js';
import { openTunnel } from './tunnel.js';

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * fetch as the router says: the global fetch for a direct request, undici's (the same engine) with
 * a dispatcher whose connections are tunnels through the proxy otherwise. Node's own fetch takes
 * no agent, and its bundled undici exposes no dispatcher to build one; undici is loaded only
 * when a request first goes through a proxy. The tunnel is ours (tunnel.ts) rather than undici's
 * ProxyAgent, so that a refusal is the same ProxyFailure (EPROXY, with the proxy's status) for
 * every client, and fetch rejects with it rather than with its generic TypeError. Without a proxy configured it is the global fetch itself.
 */
export function proxyFetch(router: ProxyRouter | undefined): Fetch {
  if (router?.server === undefined) return fetch;
  const dispatchers = new Map<string, UndiciAgent>();
  return async (input, init) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const route = await router.routeUrl(url);
    if (route === undefined) return fetch(input, init);
    const undici = require('undici') as typeof import('undici');
    let dispatcher = dispatchers.get(route.server.field);
    if (!dispatcher) {
      dispatcher = new undici.Agent({ connect: tunnelConnector(route) });
      dispatchers.set(route.server.field, dispatcher);
    }
    // A Request object of the global fetch is not one of undici's: it is passed on as its parts.
    const request = typeof input === 'string' || input instanceof URL ? undefined : input;
    const options = {
      ...(request && { method: request.method, headers: [...request.headers], body: request.body, redirect: request.redirect, signal: request.signal, duplex: 'half' }),
      ...init,
      dispatcher,
    };
    try {
      return (await undici.fetch(url, options as Parameters<typeof undici.fetch>[1])) as unknown as Response;
    } catch (error) {
      // fetch rejects with TypeError('fetch failed') whatever happened; the tunnel's own failure is its cause, and what callers need.
      const cause = (error as { cause?: unknown }).cause;
      if (cause instanceof ProxyFailure) {
        router.noteFailure(cause);
        throw cause;
      }
      throw error;
    }
  };
}

type ConnectorOptions = { hostname: string; protocol: string; port: string; servername?: string };
type ConnectorCallback = (...args: [null, Socket] | [Error, null]) => void;

function tunnelConnector(route: ProxyRoute): (options: ConnectorOptions, callback: ConnectorCallback) => void {
  return (options, callback) => {
    const secure = options.protocol === 'https:';
    const host = options.hostname.replace(/^\[(.*)\]$/, '$1');
    const port = Number(options.port) || (secure ? 443 : 80);
    openTunnel(route, { host, port }).then(
      (socket) => {
        if (!secure) return callback(null, socket);
        const servername = options.servername ?? (isIP(host) === 0 ? host : undefined);
        const secured = tls.connect({ socket, ...(servername !== undefined && { servername }), ALPNProtocols: ['http/1.1'] });
        secured.once('secureConnect', () => {
          secured.removeListener('error', onError);
          callback(null, secured);
        });
        const onError = (error: Error) => callback(error, null);
        secured.once('error', onError);
      },
      (error: Error) => callback(error, null),
    );
  };
}
