import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import type { ProxyRouter } from './proxy.js';
import { proxyFetch, type Fetch } from './proxyFetch.js';

/**
 * MSAL's network module over proxyFetch, for the delegated flows that use @azure/msal-node
 * directly (msal-node 5 dropped its proxyUrl option and takes a network client instead). Its
 * answers are MSAL's own HttpClient's: headers as a plain object, the body parsed as JSON; a
 * proxy's refusal comes as proxyFetch throws it (ProxyFailure), so that the token error names the proxy.
 * Undefined when no proxy is configured: MSAL keeps its own client.
 */
export function msalNetworkClient(router: ProxyRouter | undefined): INetworkModule | undefined {
  if (router?.server === undefined) return undefined;
  const send = proxyFetch(router);
  return {
    sendGetRequestAsync: <T>(url: string, options?: NetworkRequestOptions, timeout?: number) => request<T>(send, url, 'GET', options, timeout),
    sendPostRequestAsync: <T>(url: string, options?: NetworkRequestOptions) => request<T>(send, url, 'POST', options),
  };
}

async function request<T>(send: Fetch, url: string, method: 'GET' | 'POST', options: NetworkRequestOptions = {}, timeoutMs?: number): Promise<NetworkResponse<T>> {
  const response = await send(url, {
    method,
    headers: options.headers ?? {},
    ...(method === 'POST' && { body: options.body ?? '' }),
    ...(timeoutMs !== undefined && { signal: AbortSignal.timeout(timeoutMs) }),
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  return { headers, body: (await response.json()) as T, status: response.status };
}
