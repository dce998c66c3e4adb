import type { TableClient } from '@azure/data-tables';
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/identity';
import type { StorageConnection } from '../config/storageSettings.js';
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
  retained: 'mail-retained',
} as const;

/** Where the account's requests go: HTTPS_PROXY, or directly (NO_PROXY). @default directly */
export interface StorageClientOptions {
  proxy?: ProxyRouter;
  /** The authority of an identity-based account's service principal or developer credential (AZURE_AUTHORITY_HOST). @default the public cloud's */
  authority?: { authorityHost: string; disableInstanceDiscovery: boolean };
}

/**
 * One storage account: the one the Functions host itself uses (AzureWebJobsStorage), reached
 * through its connection string (Azurite locally, an account key) or, identity-based, through its
 * service URIs with a token credential (in Azure: the app's user-assigned managed identity, with
 * shared key access off on the account). Each table, container and queue is created on first use,
 * once per process; the SDK clients and the credential are made once and reused.
 */
export class StorageAccount {
  private readonly tables = new Map<string, Promise<TableClient>>();
  private readonly containers = new Map<string, Promise<ContainerClient>>();
  private readonly queues = new Map<string, Promise<QueueClient>>();
  private blobServiceClient?: Promise<BlobServiceClient>;
  private queueServiceClient?: Promise<QueueServiceClient>;
  private tokenCredential?: TokenCredential;

  constructor(
    private readonly connection: StorageConnection,
    private readonly clientOptions: StorageClientOptions = {},
  ) {}

  /** How the account is reached, for health and diagnosis: never the connection string itself. */
  get authentication(): 'connectionString' | 'identity' {
    return this.connection.kind;
  }

  table(name: string): Promise<TableClient> {
    return once(this.tables, name, async () => {
      const { TableClient } = require('@azure/data-tables') as typeof import('@azure/data-tables');
      const options = azureProxyOptions(this.clientOptions.proxy);
      let client: TableClient;
      if (this.connection.kind === 'identity') {
        client = new TableClient(this.connection.serviceUris.table, name, this.credential(), options);
      } else {
        // The Tables client refuses http endpoints unless told; the other Storage clients follow
        // the connection string. An http endpoint there is the operator's choice (Azurite).
        const connectionString = this.connection.connectionString;
        const allowInsecureConnection = /(?:^|;)\s*TableEndpoint\s*=\s*http:/i.test(connectionString)
          || /(?:^|;)\s*DefaultEndpointsProtocol\s*=\s*http\s*(?:;|$)/i.test(connectionString);
        client = TableClient.fromConnectionString(connectionString, name, { ...options, allowInsecureConnection });
      }
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
      const connection = this.connection;
      this.queueServiceClient ??= this.withProxy((options) => connection.kind === 'identity'
        ? new QueueServiceClient(connection.serviceUris.queue, this.credential(), options)
        : QueueServiceClient.fromConnectionString(connection.connectionString, options));
      const client = (await this.queueServiceClient).getQueueClient(name);
      await client.createIfNotExists();
      return client;
    });
  }

  private blobService(): Promise<BlobServiceClient> {
    const { BlobServiceClient } = require('@azure/storage-blob') as typeof import('@azure/storage-blob');
    const connection = this.connection;
    this.blobServiceClient ??= this.withProxy((options) => connection.kind === 'identity'
      ? new BlobServiceClient(connection.serviceUris.blob, this.credential(), options)
      : BlobServiceClient.fromConnectionString(connection.connectionString, options));
    return this.blobServiceClient;
  }

  /**
   * The identity-based account's one credential, shared by its blob, queue and table clients (so
   * one token serves all three: they ask for the same storage scope). Its token requests take the
   * app's proxy route; the managed identity endpoint is always reached directly.
   */
  private credential(): TokenCredential {
    if (this.tokenCredential) return this.tokenCredential;
    if (this.connection.kind !== 'identity') throw new Error('a connection string account has no token credential');
    const sdk = require('@azure/identity') as typeof import('@azure/identity');
    const proxyOptions = azureProxyOptions(this.clientOptions.proxy);
    const setting = this.connection.credential;
    switch (setting.kind) {
      case 'managedIdentity':
        this.tokenCredential = setting.clientId !== undefined
          ? new sdk.ManagedIdentityCredential({ clientId: setting.clientId, ...proxyOptions })
          : setting.resourceId !== undefined
            ? new sdk.ManagedIdentityCredential({ resourceId: setting.resourceId, ...proxyOptions })
            : new sdk.ManagedIdentityCredential(proxyOptions);
        break;
      case 'clientSecret':
        this.tokenCredential = new sdk.ClientSecretCredential(setting.tenantId, setting.clientId, setting.clientSecret, { ...this.clientOptions.authority, ...proxyOptions });
        break;
      case 'default':
        this.tokenCredential = new sdk.DefaultAzureCredential({
          ...this.clientOptions.authority,
          ...proxyOptions,
          ...(setting.tenantId !== undefined && { tenantId: setting.tenantId }),
          ...(setting.clientId !== undefined && { managedIdentityClientId: setting.clientId }),
        });
        break;
    }
    return this.tokenCredential;
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

/** The account of AzureWebJobsStorage (a connection string, or its identity-based settings); ECONFIG naming the setting when there is none. */
export function storageAccount(connection: StorageConnection | string | undefined, clientOptions: StorageClientOptions = {}): StorageAccount {
  const resolved = typeof connection === 'string' ? (connection.trim() ? { kind: 'connectionString' as const, connectionString: connection } : undefined) : connection;
  if (!resolved) {
    throw new MailError('ECONFIG', 'AzureWebJobsStorage is not set', {
      field: 'AzureWebJobsStorage',
      hint: 'Set AzureWebJobsStorage to the storage account connection string (locally: the Azurite one, which `npm start` sets for you), or, identity-based, AzureWebJobsStorage__blobServiceUri, __queueServiceUri, __tableServiceUri and __credential=managedidentity with __clientId (docs/settings.md).',
    });
  }
  return new StorageAccount(resolved, clientOptions);
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
  // @azure/identity's failures (no managed identity here, an identity the platform does not know, a refused secret).
  const name = (error as { name?: unknown } | null)?.name;
  if (name === 'CredentialUnavailableError' || name === 'AuthenticationError' || name === 'AggregateAuthenticationError') {
    return new MailError('ESTATE', `${what}: no token for the storage account (${name})`, {
      field: 'AzureWebJobsStorage__credential',
      hint: 'Identity-based storage gets its token from AzureWebJobsStorage__credential: in Azure, managedidentity with AzureWebJobsStorage__clientId the client id of a user-assigned identity attached to the app; locally, sign in with `az login` or remove the __* settings to use Azurite.',
      cause: error,
    });
  }
  const reason = status !== undefined ? ` (storage answered ${status})` : typeof code === 'string' ? ` (${code})` : '';
  return new MailError('ESTATE', `${what}${reason}`, {
    hint: code === 'ECONNREFUSED'
      ? 'Nothing listens at the storage endpoint of AzureWebJobsStorage: start Azurite locally (npm start does), or point the setting at a storage account.'
      : status === 401 || status === 403
        ? 'The storage account refused the app: with a connection string, check that its key or SAS is current; identity-based, that the identity has Storage Blob Data Owner, Storage Queue Data Contributor and Storage Table Data Contributor on the account (infra/app/rbac.bicep grants them).'
        : 'Check that the storage account of AzureWebJobsStorage is reachable and its settings are current.',
    cause: error,
  });
}

/**
 * A whole blob in one GET. `downloadToBuffer` without a length first asks for the blob's size (a
 * HEAD: a second storage transaction per read); a download's body is read to its end instead.
 */
export async function downloadWhole(blob: import('@azure/storage-blob').BlobClient, options: { abortSignal?: AbortSignal } = {}): Promise<Buffer> {
  const response = await blob.download(0, undefined, { abortSignal: options.abortSignal });
  const body = response.readableStreamBody;
  if (!body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}
