import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import type { ProxyRoute, ProxyRouter } from './proxy.js';
import { openTunnel } from './tunnel.js';

/** The client options every Azure SDK client and credential takes (CommonClientOptions), of which these are set. */
export interface AzureProxyOptions {
  additionalPolicies?: Array<{ policy: PipelinePolicy; position: 'perCall' | 'perRetry' }>;
}

type ConnectionCallback = (error: Error | null, socket: Duplex) => void;

/** Node's Agent over a tunnel: createConnection answers through the callback once the proxy opened it (https.Agent then keeps it alive and reuses it). */
class HttpsTunnelAgent extends https.Agent {
  constructor(private readonly route: ProxyRoute) {
    super({ keepAlive: true });
  }

  override createConnection(options: https.RequestOptions, callback?: ConnectionCallback): undefined {
    openTunnel(this.route, { host: options.host ?? 'localhost', port: Number(options.port ?? 443) }).then(
      (socket) => callback?.(null, tls.connect({ ...(options as tls.ConnectionOptions), socket })),
      (error: Error) => callback?.(error, undefined as never),
    );
    return undefined;
  }
}

class HttpTunnelAgent extends http.Agent {
  constructor(private readonly route: ProxyRoute) {
    super({ keepAlive: true });
  }

  override createConnection(options: http.ClientRequestArgs, callback?: ConnectionCallback): undefined {
    openTunnel(this.route, { host: options.host ?? 'localhost', port: Number(options.port ?? 80) }).then(
      (socket) => callback?.(null, socket),
      (error: Error) => callback?.(error, undefined as never),
    );
    return undefined;
  }
}

/**
 * Client options that send an Azure SDK client's requests (Key Vault, Storage, @azure/identity's
 * token requests) where the router says, per request: through a tunnel, or directly. Nothing when
 * no proxy is configured, so the SDK runs as it always did.
 *
 * Not the SDK's own `proxyOptions`: its proxy policy applies the NO_PROXY of process.env, read
 * once per process, which is not the runtime's (a runtime made with its own env, the CLI, a test),
 * and its https-proxy-agent passes a proxy's refusal on as the service's own answer. This policy
 * runs last before the HTTP client (perRetry) and sets the request's agent, which the SDK's proxy
 * policy then leaves alone; a direct request gets a keep-alive agent as the SDK's own client would.
 */
export function azureProxyOptions(router: ProxyRouter | undefined): AzureProxyOptions {
  if (router?.server === undefined) return {};
  const agents = new Map<string, http.Agent>();
  const direct = { 'http:': new http.Agent({ keepAlive: true }), 'https:': new https.Agent({ keepAlive: true }) };
  const policy: PipelinePolicy = {
    name: 'mailProxyPolicy',
    async sendRequest(request, next) {
      const url = new URL(request.url);
      const insecure = url.protocol === 'http:';
      const route = await router.routeUrl(url);
      if (route === undefined) {
        request.agent = insecure ? direct['http:'] : direct['https:'];
      } else {
        const key = `${url.protocol}${route.server.field}`;
        let agent = agents.get(key);
        if (!agent) {
          agent = insecure ? new HttpTunnelAgent(route) : new HttpsTunnelAgent(route);
          agents.set(key, agent);
        }
        request.agent = agent;
      }
      try {
        return await next(request);
      } catch (error) {
        // The SDK's RestError keeps the tunnel failure's code and message.
        if ((error as { code?: unknown }).code === 'EPROXY') router.noteFailure(error as Error);
        throw error;
      }
    },
  };
  return { additionalPolicies: [{ policy, position: 'perRetry' }] };
}
