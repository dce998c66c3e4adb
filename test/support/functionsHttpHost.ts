import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpRequest, InvocationContext, type HttpHandler, type HttpResponseInit } from '@azure/functions';
import { listenHttps, readBody, type LoopbackHttpsServer } from '../peers/httpsServer.js';

export interface HostedCall {
  route: string;
  method: string;
  query: URLSearchParams;
  status: number;
}

/**
 * What the Functions host does for HTTP triggers, on https://127.0.0.1:<port> with the test CA's
 * certificate: each request to /api/<route> becomes an @azure/functions HttpRequest (method, url,
 * headers, query, body), the registered handler is called with a fresh InvocationContext, and its
 * HttpResponseInit is written back. So a peer (the Graph stand-in) can reach a function over the
 * network as Graph reaches the app.
 */
export class FunctionsHttpHost {
  readonly calls: HostedCall[] = [];
  private readonly routes = new Map<string, HttpHandler>();
  private server?: LoopbackHttpsServer;

  /** The public base URL, as NOTIFICATION_URL names it. */
  get url(): string {
    if (!this.server) throw new Error('FunctionsHttpHost is not started');
    return this.server.url;
  }

  serve(route: string, handler: HttpHandler): this {
    this.routes.set(`/api/${route}`, handler);
    return this;
  }

  async start(): Promise<this> {
    this.server = await listenHttps(
      (req, res) => this.handle(req, res),
      (res) => {
        res.writeHead(500);
        res.end();
      },
    );
    return this;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const handler = this.routes.get(url.pathname);
    const body = await readBody(req);
    const call: HostedCall = { route: url.pathname, method: req.method ?? 'GET', query: url.searchParams, status: 404 };
    this.calls.push(call);
    if (!handler) {
      res.writeHead(404);
      return void res.end();
    }
    const headers = Object.fromEntries(Object.entries(req.headers).flatMap(([k, v]) => (v === undefined ? [] : [[k, Array.isArray(v) ? v.join(', ') : v]])));
    const request = new HttpRequest({ method: call.method, url: url.toString(), headers, query: Object.fromEntries(url.searchParams), ...(body.length > 0 && { body: { string: body } }) });
    const context = new InvocationContext({ invocationId: `host-${this.calls.length}`, functionName: url.pathname, logHandler: () => {} });
    const answer: HttpResponseInit = await handler(request, context);
    call.status = answer.status ?? 200;
    res.writeHead(call.status, Object.fromEntries(Object.entries((answer.headers ?? {}) as Record<string, string>)));
    res.end(typeof answer.body === 'string' ? answer.body : answer.body === undefined || answer.body === null ? undefined : JSON.stringify(answer.body));
  }
}
