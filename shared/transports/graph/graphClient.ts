import type { AuthenticationProvider, Client, Context, FetchOptions, GraphRequest, Middleware, MiddlewareOptions, ShouldRetry } from '@microsoft/microsoft-graph-client';
import { z } from 'zod';
import { graphScope } from '../../config/cloud.js';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import type { TokenProvider } from '../../identity/tokenProvider.js';
import { urlTarget, type ProxyRouter } from '../../network/proxy.js';
import { proxyMailError } from '../../network/proxyErrors.js';
import { proxyFetch } from '../../network/proxyFetch.js';
import { NO_TELEMETRY, type Telemetry } from '../../telemetry/index.js';
import type { RequestGovernor, TransportDeps } from '../types.js';
import { parseRetryAfter, translateGraphError } from './graphErrors.js';

type GraphSdk = typeof import('@microsoft/microsoft-graph-client');

/** The Graph SDK is loaded when a profile first uses Graph, not at start-up. */
export function graphSdk(): GraphSdk {
  return require('@microsoft/microsoft-graph-client') as GraphSdk;
}

/**
 * Retries after 429/503/504 are the SDK's RetryHandler's (it honours Retry-After).
 * Three retries is the SDK default; a wait longer than MAX_HONOURED_RETRY_AFTER_SECONDS
 * is not slept through inside a request: the caller gets ETHROTTLED with the
 * Retry-After passed on (the HTTP API answers 429, a queue worker reschedules).
 */
export const GRAPH_MAX_RETRIES = 3;
export const MAX_HONOURED_RETRY_AFTER_SECONDS = 30;
/** Delay before a retry when the answer carries no Retry-After (the SDK adds exponential back-off). */
const RETRY_DELAY_SECONDS = 3;

/**
 * Ids that survive moves between folders (Sent Items, a `moveTo` folder), which keeps our
 * stable ids stable. https://learn.microsoft.com/graph/outlook-immutable-id
 */
export const IMMUTABLE_ID_PREFERENCE = 'IdType="ImmutableId"';

export interface GraphCallOptions {
  abortSignal?: AbortSignal;
  /** More `Prefer` values, joined with the immutable-id preference. */
  prefer?: string[];
}

/**
 * JSON batching (https://learn.microsoft.com/graph/json-batching): at most 20 requests in one
 * POST /$batch, each answered on its own (status, headers, body) and in any order; a throttled
 * one is a 429 with its own Retry-After inside a 200 batch answer.
 */
export const GRAPH_BATCH_MAX_REQUESTS = 20;

/** One request of a batch: its url is relative to the version root (`/users/{id}/messages/{id}`). */
export interface GraphBatchRequest {
  id: string;
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
}

const batchAnswer = z.object({
  responses: z.array(z.object({ id: z.string(), status: z.number().int(), headers: z.record(z.string(), z.string()).optional(), body: z.unknown().optional() })),
});
export type GraphBatchResponse = z.infer<typeof batchAnswer>['responses'][number];

/** A token provider for one Graph request that keeps its own failure, which the SDK would otherwise wrap into a GraphError without our code. */
class RequestAuth implements AuthenticationProvider {
  failure?: unknown;

  constructor(
    private readonly tokens: TokenProvider,
    private readonly scope: string,
    private readonly abortSignal?: AbortSignal,
  ) {}

  async getAccessToken(): Promise<string> {
    try {
      return await this.tokens.getToken(this.scope, { abortSignal: this.abortSignal });
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }
}

/** sendMail, or a draft's send: POST …/sendMail, POST …/messages/{id}/send. */
const SENDING_PATH = /\/(?:sendMail|messages\/[^/?#]+\/send)(?:[?#]|$)/i;

function isSendingRequest(request: RequestInfo, options: FetchOptions | undefined): boolean {
  const url = typeof request === 'string' ? request : request.url;
  const method = options?.method ?? (typeof request === 'string' ? 'GET' : request.method);
  return method.toUpperCase() === 'POST' && SENDING_PATH.test(url);
}

/** A throttled answer: 429, or 503 with Retry-After. */
function isThrottled(response: Response | undefined): boolean {
  return response !== undefined && (response.status === 429 || (response.status === 503 && response.headers.has('Retry-After')));
}

/** Per request: what the governor refused it with, which the SDK would otherwise wrap into a GraphError without our code. */
class GovernedRequest implements MiddlewareOptions {
  failure?: unknown;
}

/**
 * Holds each attempt (it sits after the RetryHandler, so a retry waits again) to the limits of the
 * profile's app and mailbox across instances: a concurrency slot for as long as the attempt runs,
 * and its place in the request budget. A $batch costs its requests (Graph counts each, and runs
 * up to 4 of them at once). https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits
 */
class GovernorGate implements Middleware {
  private next?: Middleware;

  constructor(private readonly governor: RequestGovernor) {}

  async execute(context: Context): Promise<void> {
    let permit: { release(): void };
    try {
      permit = await this.governor.admit({ cost: requestCost(context), abortSignal: context.options?.signal ?? undefined });
    } catch (error) {
      const options = context.middlewareControl?.getMiddlewareOptions(GovernedRequest) as GovernedRequest | undefined;
      if (options) options.failure = error;
      throw error;
    }
    try {
      await this.next!.execute(context);
      if (isThrottled(context.response)) this.governor.throttled();
    } finally {
      permit.release();
    }
  }

  setNext(next: Middleware): void {
    this.next = next;
  }
}

/** Graph requests one HTTP request is: the requests of a $batch body, else 1. */
function requestCost(context: Context): number {
  const url = typeof context.request === 'string' ? context.request : context.request.url;
  if (!/\/\$batch(?:\?|$)/.test(url) || typeof context.options?.body !== 'string') return 1;
  try {
    const requests = (JSON.parse(context.options.body) as { requests?: unknown }).requests;
    return Array.isArray(requests) && requests.length > 0 ? requests.length : 1;
  } catch {
    // Not JSON: Graph refuses it as one request.
    return 1;
  }
}

/** One throttled answer in mail.throttled, and its Retry-After in mail.throttle.retry_after. */
function countThrottled(telemetry: Telemetry, profile: string, status: number, retryAfterHeader: string | null | undefined): void {
  const attributes = { 'mail.profile': profile, 'mail.transport': 'graph', 'mail.status': status };
  telemetry.count('mail.throttled', attributes);
  const retryAfter = parseRetryAfter(retryAfterHeader);
  if (retryAfter !== undefined) telemetry.record('mail.throttle.retry_after', retryAfter, attributes);
}

/**
 * Counts each throttled answer Graph gives (429, or 503 with Retry-After) as it arrives, after
 * the retry handler: the ones the SDK retries through count too, since each is a request the
 * mailbox's budget refused.
 */
class ThrottleCounter implements Middleware {
  private next?: Middleware;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly profile: string,
  ) {}

  async execute(context: Context): Promise<void> {
    await this.next!.execute(context);
    const response = context.response;
    if (!response || !isThrottled(response)) return;
    countThrottled(this.telemetry, this.profile, response.status, response.headers.get('Retry-After'));
  }

  setNext(next: Middleware): void {
    this.next = next;
  }
}

/**
 * The last middleware when the profile has a proxy: the SDK's HTTPMessageHandler calls the global
 * fetch, which takes no agent; this one calls the same request through proxyFetch.
 */
class ProxiedMessageHandler implements Middleware {
  private readonly send;

  constructor(router: ProxyRouter) {
    this.send = proxyFetch(router);
  }

  async execute(context: Context): Promise<void> {
    context.response = await this.send(context.request, context.options);
  }
}

/**
 * One Graph client per profile, shared by the sender and the reader: base URL and custom
 * host from `endpoints.graph`, bearer tokens from the profile's token provider.
 */
export class GraphConnection {
  readonly client: Client;
  private readonly scope: string;

  constructor(
    readonly profile: Profile,
    private readonly tokens: TokenProvider,
    private readonly proxy?: ProxyRouter,
    private readonly telemetry: Telemetry = NO_TELEMETRY,
    private readonly governor?: RequestGovernor,
  ) {
    const sdk = graphSdk();
    this.scope = graphScope(profile.endpoints);
    // A request that sends is retried here only after a 429 (refused before it was carried out): a
    // 503 or 504 may come after Exchange took the message, and a blind resend would send it twice.
    // The send's own layer looks the Message-ID up in Sent Items first (graphSender.ts, sending()).
    const shouldRetry: ShouldRetry = (_delay, _attempt, request, options, response) =>
      (response.status === 429 || !isSendingRequest(request, options)) && (parseRetryAfter(response.headers.get('Retry-After')) ?? 0) <= MAX_HONOURED_RETRY_AFTER_SECONDS;
    this.client = sdk.Client.initWithMiddleware({
      baseUrl: profile.endpoints.graph,
      defaultVersion: 'v1.0',
      // The SDK adds the Authorization header only for Microsoft's Graph hosts and these:
      // without it a proxy, a sovereign-cloud override or the test stand-in would get no token.
      customHosts: new Set([new URL(profile.endpoints.graph).hostname]),
      middleware: [
        new sdk.AuthenticationHandler(new RequestAuth(tokens, this.scope)),
        new sdk.RetryHandler(new sdk.RetryHandlerOptions(RETRY_DELAY_SECONDS, GRAPH_MAX_RETRIES, shouldRetry)),
        ...(governor ? [new GovernorGate(governor)] : []),
        ...(telemetry.enabled ? [new ThrottleCounter(telemetry, profile.name)] : []),
        new sdk.RedirectHandler(new sdk.RedirectHandlerOptions()),
        new sdk.TelemetryHandler(),
        proxy?.server === undefined ? new sdk.HTTPMessageHandler() : new ProxiedMessageHandler(proxy),
      ],
    });
  }

  /**
   * `/users/{mailbox}` with the mailbox escaped for a path segment; `/me` for a personal
   * account (tenantId "consumers"), which Graph does not address by name.
   */
  get userPath(): string {
    return this.profile.endpoints.personal ? '/me' : `/users/${encodeURIComponent(this.profile.mailbox)}`;
  }

  /**
   * Runs one Graph request and translates whatever fails into a MailError: a token failure
   * keeps its own error (ETOKEN, so withAuthRetry re-reads the secret), everything else goes
   * through the Graph error table.
   */
  async call<T>(path: string, options: GraphCallOptions, send: (request: GraphRequest) => Promise<T>): Promise<T> {
    const sdk = graphSdk();
    const auth = new RequestAuth(this.tokens, this.scope, options.abortSignal);
    const governed = new GovernedRequest();
    const request = this.client
      .api(path)
      .header('Prefer', [IMMUTABLE_ID_PREFERENCE, ...(options.prefer ?? [])].join(', '))
      .middlewareOptions([new sdk.AuthenticationHandlerOptions(auth), governed]);
    if (options.abortSignal) request.option('signal', options.abortSignal);
    try {
      return await send(request);
    } catch (error) {
      if (auth.failure !== undefined) throw auth.failure;
      if (governed.failure !== undefined && !options.abortSignal?.aborted) throw governed.failure;
      const graph = urlTarget(this.profile.endpoints.graph);
      const proxied = proxyMailError(error, { server: this.proxy?.isDirect(graph) === false ? this.proxy.server : undefined, target: graph, profile: this.profile.name });
      if (proxied) throw proxied;
      if (options.abortSignal?.aborted) throw new MailError('ECONNECTION', 'the Graph request was aborted', { profile: this.profile.name, cause: error, hint: 'The operation was cancelled or timed out; it may be retried.' });
      throw translateGraphError(error, { profile: this.profile.name, mailbox: this.profile.mailbox });
    }
  }
  /**
   * Sends up to GRAPH_BATCH_MAX_REQUESTS requests as one JSON batch and answers each one's response
   * (matched by id by the caller). The batch request itself goes through the same middleware,
   * retries and translation as `call`; what each response says is the caller's to judge.
   */
  async batch(requests: readonly GraphBatchRequest[], options: GraphCallOptions): Promise<GraphBatchResponse[]> {
    if (requests.length > GRAPH_BATCH_MAX_REQUESTS) throw new RangeError(`a Graph batch holds at most ${GRAPH_BATCH_MAX_REQUESTS} requests, not ${requests.length}`);
    const answer = await this.call('/$batch', options, (request) => request.post({ requests }) as Promise<unknown>);
    const parsed = batchAnswer.safeParse(answer);
    if (!parsed.success) {
      throw new MailError('EPROVIDER', `profile "${this.profile.name}": unexpected Graph batch answer: ${parsed.error.issues[0]?.message ?? 'invalid'}`, { profile: this.profile.name, hint: 'Check that endpoints.graph points at Microsoft Graph.' });
    }
    // A request inside a batch may be throttled on its own (the batch itself answers 200): counted
    // as the middleware counts whole answers, in mail.throttled and the governor's health.
    for (const response of parsed.data.responses) {
      const retryAfterHeader = Object.entries(response.headers ?? {}).find(([name]) => name.toLowerCase() === 'retry-after')?.[1];
      if (response.status !== 429 && !(response.status === 503 && retryAfterHeader !== undefined)) continue;
      this.governor?.throttled();
      countThrottled(this.telemetry, this.profile.name, response.status, retryAfterHeader);
    }
    return parsed.data.responses;
  }
}

/** The profile's Graph connection: one per profile where the runtime keeps its resources, so the sender and the reader share one client. */
export function graphConnection(profile: Profile, deps: Pick<TransportDeps, 'tokens' | 'resources' | 'proxy' | 'telemetry' | 'governor'>): GraphConnection {
  const create = () => new GraphConnection(profile, deps.tokens, deps.proxy, deps.telemetry, deps.governor);
  return deps.resources ? deps.resources.once('graph', create) : create();
}
