import { stripEnds } from '../text.js';
/**
 * The one place that maps a profile's `cloud` to Microsoft hosts. Nothing else in the
 * code may name a Microsoft host: everything reads a profile's resolved Endpoints.
 *
 * Sources: national cloud deployments
 * https://learn.microsoft.com/graph/deployments and Exchange Online endpoints
 * https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth
 * and the token exchange audiences of a managed identity as a federated credential
 * https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity
 */
export type CloudName = 'public' | 'usgov' | 'china';

export interface HostPort {
  host: string;
  port: number;
}

export interface Endpoints {
  /** Authority host, e.g. https://login.microsoftonline.com (the tenant is appended per profile). */
  authority: string;
  /** Graph service root without the version, e.g. https://graph.microsoft.com */
  graph: string;
  /** Resource in the Graph scope; stays the cloud's even when `graph` points at a proxy. */
  graphResource: string;
  /** Resource of the Exchange protocols' scope, e.g. https://outlook.office365.com */
  exchangeResource: string;
  /** Audience of the managed identity token a `federated` profile presents as its client assertion, e.g. api://AzureADTokenExchange */
  tokenExchangeAudience: string;
  smtp: HostPort;
  imap: HostPort;
  pop3: HostPort;
  /** A personal Microsoft account (Outlook.com, tenantId "consumers"): Graph addresses the signed-in user as /me. */
  personal: boolean;
}

/** The tenant of personal Microsoft accounts (Outlook.com, Hotmail, Live): the `consumers` authority. */
export const PERSONAL_TENANT = 'consumers';

export function isPersonalTenant(tenantId: string | undefined): boolean {
  return tenantId?.toLowerCase() === PERSONAL_TENANT;
}

/**
 * Outlook.com, for personal accounts, public cloud only: SMTP submission at
 * smtp-mail.outlook.com:587 (STARTTLS), IMAP and POP3 at outlook.office365.com, and the
 * protocols' delegated scopes on https://outlook.office.com, as Microsoft documents them for
 * Outlook.com (https://support.microsoft.com/office/pop-imap-and-smtp-settings-for-outlook-com-d088b986-291d-42b8-9564-9c414e2aa040,
 * and the scope table of the Exchange OAuth page above).
 */
const PERSONAL: Pick<Endpoints, 'exchangeResource' | 'smtp' | 'imap' | 'pop3'> = {
  exchangeResource: 'https://outlook.office.com',
  smtp: { host: 'smtp-mail.outlook.com', port: 587 },
  imap: { host: 'outlook.office365.com', port: 993 },
  pop3: { host: 'outlook.office365.com', port: 995 },
};

export interface EndpointOverrides {
  authority?: string;
  graph?: string;
  smtp?: string;
  imap?: string;
  pop3?: string;
}

const CLOUDS: Record<CloudName, Omit<Endpoints, 'graphResource' | 'personal'>> = {
  public: {
    authority: 'https://login.microsoftonline.com',
    graph: 'https://graph.microsoft.com',
    exchangeResource: 'https://outlook.office365.com',
    tokenExchangeAudience: 'api://AzureADTokenExchange',
    smtp: { host: 'smtp.office365.com', port: 587 },
    imap: { host: 'outlook.office365.com', port: 993 },
    pop3: { host: 'outlook.office365.com', port: 995 },
  },
  usgov: {
    authority: 'https://login.microsoftonline.us',
    graph: 'https://graph.microsoft.us',
    exchangeResource: 'https://outlook.office365.us',
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
    smtp: { host: 'smtp.office365.us', port: 587 },
    imap: { host: 'outlook.office365.us', port: 993 },
    pop3: { host: 'outlook.office365.us', port: 995 },
  },
  china: {
    authority: 'https://login.chinacloudapi.cn',
    graph: 'https://microsoftgraph.chinacloudapi.cn',
    exchangeResource: 'https://partner.outlook.cn',
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina',
    smtp: { host: 'smtp.partner.outlook.cn', port: 587 },
    imap: { host: 'partner.outlook.cn', port: 993 },
    pop3: { host: 'partner.outlook.cn', port: 995 },
  },
};

export const CLOUD_NAMES = Object.keys(CLOUDS) as CloudName[];

/** Authority hosts MSAL knows; any other authority needs instance discovery switched off. */
export function isKnownAuthority(authority: string): boolean {
  const host = safeHost(authority);
  return Object.values(CLOUDS).some((c) => safeHost(c.authority) === host);
}

/** @azure/identity's options for an authority: MSAL's instance discovery calls the public cloud, so an authority it does not know (a test stand-in, a private cloud) must skip it. */
export function authorityOptions(authorityHost: string): { authorityHost: string; disableInstanceDiscovery: boolean } {
  return { authorityHost, disableInstanceDiscovery: !isKnownAuthority(authorityHost) };
}

function safeHost(url: string): string | undefined {
  return URL.canParse(url) ? new URL(url).host.toLowerCase() : undefined;
}

/** Parses "host:port" (or "[v6]:port"); the port is required. Returns undefined if malformed. */
export function parseHostPort(value: string): HostPort | undefined {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(value.trim());
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

export function resolveEndpoints(cloud: CloudName, overrides: EndpointOverrides = {}, options: { personal?: boolean } = {}): Endpoints {
  const personal = options.personal === true;
  const base = personal ? { ...CLOUDS.public, ...PERSONAL } : CLOUDS[cloud];
  const hostPort = (value: string | undefined, fallback: HostPort): HostPort =>
    value === undefined ? fallback : (parseHostPort(value) ?? fallback);
  return {
    authority: stripEnds(overrides.authority ?? base.authority, '/', 'end'),
    graph: stripEnds(overrides.graph ?? base.graph, '/', 'end'),
    graphResource: base.graph,
    exchangeResource: base.exchangeResource,
    tokenExchangeAudience: base.tokenExchangeAudience,
    smtp: hostPort(overrides.smtp, base.smtp),
    imap: hostPort(overrides.imap, base.imap),
    pop3: hostPort(overrides.pop3, base.pop3),
    personal,
  };
}

/** OAuth scopes per API, derived from the endpoints (sovereign clouds have their own resources). */
export function graphScope(endpoints: Endpoints): string {
  return `${endpoints.graphResource}/.default`;
}

export function exchangeScope(endpoints: Endpoints): string {
  return `${endpoints.exchangeResource}/.default`;
}

/** The scope a managed identity asks for to get the token a `federated` profile presents to Entra. */
export function tokenExchangeScope(endpoints: Endpoints): string {
  return `${endpoints.tokenExchangeAudience}/.default`;
}

/**
 * A storage account's service endpoint from its name, in the public cloud: what the Functions host
 * does with `AzureWebJobsStorage__accountName`, which is for accounts outside sovereign clouds and
 * without custom DNS (others set the `__blobServiceUri`, `__queueServiceUri` and `__tableServiceUri`).
 * https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity
 */
export function publicStorageServiceUri(accountName: string, service: 'blob' | 'queue' | 'table'): string {
  return `https://${accountName}.${service}.core.windows.net`;
}
