import type { TableClient } from '@azure/data-tables';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { MailError, isMailError } from '../errors.js';
import { azureProxyOptions } from '../network/azureClients.js';
import { proxyLabel, type ProxyRouter } from '../network/proxy.js';

/** Table, container and queue names this app keeps its receive state in. */
export const STATE_NAMES = {
  cursors: 'mailcursors',
  delivered: 'maildelivered',
  leases: 'mail-leases',
  deadLetter: 'mail-deadletter',
  payloads: 'mail-payloads',
} as const;

/** Where the account's requests go: HTTPS_PROXY, or directly (NO_PROXY). @default directly */
export interface StorageClientOptions {
  proxy?: ProxyRouter;
}

/**
 * One storage account, reached through the `AzureWebJobsStorage` connection string (the
 * account the Functions host itself uses, and Azurite locally). Each table, container and
 * queue is created on first use, once per process; the SDK clients are reused.
 */
export class StorageAccount {
  private readonly tables = new Map<string, Promise<TableClient>>();
  private readonly containers = new Map<string, Promise<ContainerClient>>();
  private readonly queues = new Map<string, Promise<QueueClient>>();
  private blobServiceClient?: Promise<BlobServiceClient>;
  private queueServiceClient?: Promise<QueueServiceClient>;

  constructor(
    private readonly connectionString: string,
    private readonly clientOptions: StorageClientOptions = {},
  ) {}

  table(name: string): Promise<TableClient> {
    return once(this.tables, name, async () => {
      const { TableClient } = require('@azure/data-tables') as typeof import('@azure/data-tables');
      // The Tables client refuses http endpoints unless told; the other Storage clients follow
      // the connection string. An http endpoint there is the operator's choice (Azurite).
      const allowInsecureConnection = /(?:^|;)\s*TableEndpoint\s*=\s*http:/i.test(this.connectionString)
        || /(?:^|;)\s*DefaultEndpointsProtocol\s*=\s*http\s*(?:;|$)/i.test(this.connectionString);
      const client = TableClient.fromConnectionString(this.connectionString, name, { ...azureProxyOptions(this.clientOptions.proxy), allowInsecureConnection });
      // TableClient.createTable treats "already exists" as success.
      await client.createTable();
      return client;
    });
  }

  container(name: string): Promise<ContainerClient> {
    return once(this.containers, name, async () => {
      const client = (await this.blobService()).getContainerClient(name);
      await client.createIfNotExists();
      return client;
    });
  }

  queue(name: string): Promise<QueueClient> {
    return once(this.queues, name, async () => {
      const { QueueServiceClient } = require('@azure/storage-queue') as typeof import('@azure/storage-queue');
      this.queueServiceClient ??= this.withProxy((options) => QueueServiceClient.fromConnectionString(this.connectionString, options));
      const client = (await this.queueServiceClient).getQueueClient(name);
      await client.createIfNotExists();
      return client;
    });
  }

  private blobService(): Promise<BlobServiceClient> {
    const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
    this.blobServiceClient ??= this.withProxy((options) => BlobServiceClient.fromConnectionString(this.connectionString, options));
    return this.blobServiceClient;
  }

  /**
   * A blob or queue service client whose requests go where the router says. These clients take no
   * pipeline policy of ours (their options have no additionalPolicies, and every child client would
   * add one again to the pipeline they share), so they get the SDK's own proxyOptions, for the
   * endpoint the client names (made once without, to learn it). The SDK then also skips the hosts
   * in the process's NO_PROXY, which in Azure is the app's own; and its proxy agent hands a
   * refusal on as the storage answer (stateError names the proxy for 407).
   */
  private async withProxy<T extends { url: string }>(create: (options: { proxyOptions?: { host: string; port: number; username?: string; password?: string } }) => T): Promise<T> {
    const direct = create({});
    const route = await this.clientOptions.proxy?.routeUrl(direct.url);
    if (route === undefined) return direct;
    const server = route.server;
    return create({ proxyOptions: { host: proxyLabel(server).replace(/:\d+$/, ''), port: server.port, ...(server.username !== undefined && { username: server.username }), ...(route.password !== undefined && { password: route.password }) } });
  }
}

/** Runs `create` once per key; a failed creation is forgotten so the next call tries again. */
function once<T>(cache: Map<string, Promise<T>>, key: string, create: () => Promise<T>): Promise<T> {
  let pending = cache.get(key);
  if (!pending) {
    pending = create().catch((error: unknown) => {
      cache.delete(key);
      throw stateError(error, `could not prepare ${key}`);
    });
    cache.set(key, pending);
  }
  return pending;
}

/** The account of an AzureWebJobsStorage connection string; ECONFIG naming the setting when there is none. */
export function storageAccount(connectionString: string | undefined, clientOptions: StorageClientOptions = {}): StorageAccount {
  if (!connectionString?.trim()) {
    throw new MailError('ECONFIG', 'AzureWebJobsStorage is not set', {
      field: 'AzureWebJobsStorage',
      hint: 'Set AzureWebJobsStorage to the storage account connection string (locally: the Azurite one, which `npm start` sets for you).',
    });
  }
  return new StorageAccount(connectionString, clientOptions);
}

/** The HTTP status of a Storage SDK error (RestError), if it carries one. */
export function statusOf(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/** Translates a Storage SDK failure into ESTATE once, at this edge; MailErrors pass through. */
export function stateError(error: unknown, what: string): MailError {
  if (isMailError(error)) return error;
  const status = statusOf(error);
  // Without an HTTP answer the socket error is the whole story (e.g. ECONNREFUSED: Azurite not running).
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'EPROXY' || status === 407) {
    // The Azure SDK keeps only the message of the tunnel's ProxyFailure (shared/network), which names the proxy and its answer.
    return new MailError('EPROXY', `${what}: ${(error as Error).message}`, {
      field: 'HTTPS_PROXY',
      hint: 'The storage account is reached through HTTPS_PROXY: the proxy must allow CONNECT to the blob, queue and table endpoints of AzureWebJobsStorage, or list them in NO_PROXY.',
      cause: error,
    });
  }
  const reason = status !== undefined ? ` (storage answered ${status})` : typeof code === 'string' ? ` (${code})` : '';
  return new MailError('ESTATE', `${what}${reason}`, {
    hint: code === 'ECONNREFUSED'
      ? 'Nothing listens at the storage endpoint of AzureWebJobsStorage: start Azurite locally (npm start does), or point the setting at a storage account.'
      : 'Check that the storage account in AzureWebJobsStorage is reachable and the connection string is current.',
    cause: error,
  });
}
