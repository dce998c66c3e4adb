import { BlockList, isIP } from 'node:net';
import { MailError } from '../errors.js';
import { registerSensitive } from '../redact.js';

/**
 * An outbound HTTP(S) proxy as configured: the app-wide HTTPS_PROXY, or a profile's `proxy`.
 * Every connection goes through it as an HTTP CONNECT tunnel (RFC 9110 section 9.3.6): https
 * requests, and SMTP, IMAP and POP3 alike, so that one proxy rule ("CONNECT to port N") covers
 * them all and the proxy never sees a byte of what the tunnel carries.
 */
export interface ProxyServer {
  protocol: 'http:' | 'https:';
  /** Host name or IP address, IPv6 without brackets. */
  host: string;
  port: number;
  username?: string;
  /** HTTPS_PROXY may carry it in its URL (an app setting, as AzureWebJobsStorage carries its key). */
  password?: string;
  /** A profile names the secret that holds it: the profiles document holds no secrets. */
  passwordSecret?: string;
  /** Where it is configured, for people: "HTTPS_PROXY" or "profiles.support.proxy". */
  field: string;
}

/** The proxy as people may see it: scheme, host and port, never a credential. */
export function proxyLabel(server: Pick<ProxyServer, 'protocol' | 'host' | 'port'>): string {
  return `${server.protocol}//${isIP(server.host) === 6 ? `[${server.host}]` : server.host}:${server.port}`;
}

/** What is wrong with a proxy URL, or undefined: http or https, a host, at most a port, nothing after it. */
export function proxyUrlProblem(raw: string, options: { allowPassword: boolean }): string | undefined {
  if (!URL.canParse(raw)) return 'must be a proxy URL such as http://proxy.contoso.com:8080';
  const url = new URL(raw);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `must be an http:// or https:// proxy URL, not ${url.protocol}`;
  if (url.hostname === '') return 'must name the proxy host';
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '') return 'must be only scheme, host and port (http://proxy.contoso.com:8080): no path or query';
  if (url.password !== '' && !options.allowPassword) return 'must not carry a password: name the secret that holds it in proxy.passwordSecret ({ "url": "http://user@host:port", "passwordSecret": "<secret name>" })';
  return undefined;
}

/** A proxy URL already checked by proxyUrlProblem. */
export function proxyServer(raw: string, field: string, passwordSecret?: string): ProxyServer {
  const url = new URL(raw);
  const protocol = url.protocol as ProxyServer['protocol'];
  const password = url.password === '' ? undefined : decodeURIComponent(url.password);
  registerSensitive(password);
  return {
    protocol,
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port === '' ? (protocol === 'https:' ? 443 : 80) : Number(url.port),
    ...(url.username !== '' && { username: decodeURIComponent(url.username) }),
    ...(password !== undefined && { password }),
    ...(passwordSecret !== undefined && { passwordSecret }),
    field,
  };
}

/** The proxy URL app setting (HTTPS_PROXY, or https_proxy as curl also reads it): undefined when unset or empty, ECONFIG naming it when invalid. */
export function proxySetting(env: NodeJS.ProcessEnv, name: string): ProxyServer | undefined {
  const key = env[name]?.trim() ? name : name.toLowerCase();
  const raw = env[key]?.trim();
  if (!raw) return undefined;
  const problem = proxyUrlProblem(raw, { allowPassword: true });
  if (problem !== undefined) {
    // The value may hold a password: the message names the setting, never its value.
    throw new MailError('ECONFIG', `${key} ${problem}`, { field: key, hint: `Set ${key} to the proxy's URL, http://host:port or http://user:password@host:port, or remove it.` });
  }
  return proxyServer(raw, key);
}

/** A host and port a connection is made to. */
export interface ConnectTarget {
  host: string;
  port: number;
}

/**
 * NO_PROXY: the hosts reached directly, comma-separated, as curl and the Azure SDKs read it:
 * `*` (everything), a domain (`contoso.com`, `.contoso.com` and `*.contoso.com` all match it and
 * every host under it), an IP address, an IPv4 or IPv6 range (`10.0.0.0/8`), each with an optional
 * `:port` that narrows it to that port.
 */
export class NoProxy {
  private constructor(
    private readonly all: boolean,
    private readonly rules: ReadonlyArray<{ domain?: string; ip?: string; range?: BlockList; port?: number }>,
  ) {}

  static readonly NONE = new NoProxy(false, []);

  /** Parses the list; an entry that is none of the above is ECONFIG naming `field`. */
  static parse(raw: string | undefined, field = 'NO_PROXY'): NoProxy {
    const entries = (raw ?? '').split(/[\s,]+/).filter((e) => e !== '');
    if (entries.includes('*')) return new NoProxy(true, []);
    return new NoProxy(false, entries.map((entry) => noProxyRule(entry, field)));
  }

  get empty(): boolean {
    return !this.all && this.rules.length === 0;
  }

  /** True when a connection to the target is made directly. */
  matches(target: ConnectTarget): boolean {
    if (this.all) return true;
    const host = target.host.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
    const family = isIP(host);
    return this.rules.some((rule) => {
      if (rule.port !== undefined && rule.port !== target.port) return false;
      if (rule.domain !== undefined) return family === 0 && (host === rule.domain || host.endsWith(`.${rule.domain}`));
      if (rule.ip !== undefined) return host === rule.ip;
      return family !== 0 && rule.range!.check(host, family === 6 ? 'ipv6' : 'ipv4');
    });
  }
}

function noProxyRule(entry: string, field: string): { domain?: string; ip?: string; range?: BlockList; port?: number } {
  const invalid = () =>
    new MailError('ECONFIG', `${field}: "${entry}" is not a host, domain, IP address or range`, {
      field,
      hint: `List hosts to reach without the proxy, comma-separated: contoso.com, .internal.contoso.com, 10.0.0.0/8, 127.0.0.1, [::1], vault.contoso.com:443, or * for all.`,
    });
  // [v6]:port, v4:port, domain:port; a bare IPv6 address has colons of its own.
  const bracketed = /^\[([0-9a-f:.]+)\](?::(\d{1,5}))?$/i.exec(entry);
  let host = entry;
  let port: number | undefined;
  if (bracketed) {
    host = bracketed[1]!;
    port = bracketed[2] === undefined ? undefined : Number(bracketed[2]);
  } else if (isIP(entry) !== 6 && !entry.includes('/') && /:\d{1,5}$/.test(entry)) {
    port = Number(entry.slice(entry.lastIndexOf(':') + 1));
    host = entry.slice(0, entry.lastIndexOf(':'));
  }
  if (port !== undefined && (port < 1 || port > 65535)) throw invalid();
  const cidr = /^(.+)\/(\d{1,3})$/.exec(host);
  if (cidr) {
    const family = isIP(cidr[1]!);
    const prefix = Number(cidr[2]);
    if (family === 0 || prefix > (family === 6 ? 128 : 32)) throw invalid();
    const range = new BlockList();
    range.addSubnet(cidr[1]!, prefix, family === 6 ? 'ipv6' : 'ipv4');
    return { range, port };
  }
  if (isIP(host) !== 0) return { ip: host.toLowerCase(), port };
  const domain = host.toLowerCase().replace(/^\*?\./, '');
  if (!/^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*$/.test(domain)) throw invalid();
  return { domain, port };
}

/** A proxy with its password read: what a connection through it is made with. */
export interface ProxyRoute {
  server: ProxyServer;
  password?: string;
  /** The profile it serves, for messages; absent for the app's own connections (Key Vault, Storage). */
  profile?: string;
}

/** The value of a Proxy-Authorization header for the route (Basic, RFC 7617), or undefined without a user. */
export function proxyAuthorization(route: ProxyRoute): string | undefined {
  if (route.server.username === undefined) return undefined;
  const value = `Basic ${Buffer.from(`${route.server.username}:${route.password ?? ''}`).toString('base64')}`;
  registerSensitive(value);
  return value;
}

/** The proxy URL with its credentials, for the libraries that take one (nodemailer, imapflow). Never logged: its password is registered. */
export function proxyUrlWithCredentials(route: ProxyRoute): string {
  const url = new URL(proxyLabel(route.server));
  if (route.server.username !== undefined) url.username = encodeURIComponent(route.server.username);
  if (route.password !== undefined) url.password = encodeURIComponent(route.password);
  return url.href.replace(/\/$/, '');
}

export interface ProxyRouterOptions {
  /** The proxy connections go through: the profile's own, else HTTPS_PROXY; none: every connection is direct. */
  server?: ProxyServer;
  noProxy: NoProxy;
  /** Targets reached directly whatever NO_PROXY says: the managed identity endpoint on this host. */
  direct?: readonly ConnectTarget[];
  /** Reads the secret the profile's proxy password is kept in. */
  readSecret?: (name: string) => Promise<string>;
  profile?: string;
}

/**
 * Where one profile's connections (or the app's own) go: through the proxy, or directly for the
 * hosts NO_PROXY names and the managed identity endpoint, which a proxy cannot reach (it is on
 * this host: IMDS at 169.254.169.254, App Service's IDENTITY_ENDPOINT). The password is read from
 * the secret store once, when the first connection needs it.
 */
export class ProxyRouter {
  private password?: Promise<string | undefined>;
  private failure?: { error: Error; at: number };

  constructor(private readonly options: ProxyRouterOptions) {}

  /** The configured proxy, if any, whatever NO_PROXY says of a given host. */
  get server(): ProxyServer | undefined {
    return this.options.server;
  }

  get profile(): string | undefined {
    return this.options.profile;
  }

  /** The route for a connection to the target, or undefined for a direct one. */
  async route(target: ConnectTarget): Promise<ProxyRoute | undefined> {
    const server = this.options.server;
    if (server === undefined || this.isDirect(target)) return undefined;
    return { server, password: await this.readPassword(server), ...(this.options.profile !== undefined && { profile: this.options.profile }) };
  }

  /** The route for a request to the URL (port from the scheme when the URL names none). */
  routeUrl(url: string | URL): Promise<ProxyRoute | undefined> {
    return this.route(urlTarget(url));
  }

  isDirect(target: ConnectTarget): boolean {
    if (this.options.server === undefined) return true;
    const host = target.host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    if (host === IMDS_HOST || (this.options.direct ?? []).some((d) => d.host.toLowerCase() === host && d.port === target.port)) return true;
    return this.options.noProxy.matches(target);
  }

  /**
   * Keeps a tunnel's failure for the token error that follows it: MSAL turns a failed authority
   * metadata request into "endpoints_resolution_error" without its cause, so the token error
   * alone cannot say that the proxy refused.
   */
  noteFailure(error: Error): void {
    this.failure = { error, at: Date.now() };
  }

  /** The failure noted within the last minute, once. */
  takeFailure(): Error | undefined {
    const failure = this.failure;
    this.failure = undefined;
    return failure !== undefined && Date.now() - failure.at < 60_000 ? failure.error : undefined;
  }

  private readPassword(server: ProxyServer): Promise<string | undefined> {
    if (server.passwordSecret === undefined || this.options.readSecret === undefined) return Promise.resolve(server.password);
    const name = server.passwordSecret;
    this.password ??= this.options.readSecret(name).then(
      (value) => {
        registerSensitive(value);
        return value;
      },
      (error: unknown) => {
        // Not kept: the next connection reads the secret again.
        this.password = undefined;
        throw error;
      },
    );
    return this.password;
  }
}

/** The Azure Instance Metadata Service, the managed identity endpoint of VMs and containers. */
const IMDS_HOST = '169.254.169.254';

/** The managed identity endpoints the app settings name (App Service and Functions set IDENTITY_ENDPOINT; older hosts MSI_ENDPOINT). */
export function managedIdentityEndpoints(env: NodeJS.ProcessEnv): ConnectTarget[] {
  return ['IDENTITY_ENDPOINT', 'MSI_ENDPOINT'].flatMap((name) => {
    const raw = env[name]?.trim();
    return raw && URL.canParse(raw) ? [urlTarget(raw)] : [];
  });
}

export function urlTarget(url: string | URL): ConnectTarget {
  const parsed = typeof url === 'string' ? new URL(url) : url;
  const port = parsed.port !== '' ? Number(parsed.port) : parsed.protocol === 'http:' ? 80 : 443;
  return { host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}
