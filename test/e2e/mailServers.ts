import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { serverTls } from '../peers/tls.js';

const run = promisify(execFile);

/**
 * The real Dovecot (IMAP, POP3, LMTP, SASL) and Postfix (submission with STARTTLS, and
 * submissions with implicit TLS) from Debian's packages,
 * each started by the suite as root with its own config in a temporary folder, listening on
 * free loopback ports with the test CA's certificate. Bearer tokens are checked by Dovecot's
 * oauth2 passdb against the token endpoint peer's RFC 7662 introspection URL; Postfix takes
 * SASL from Dovecot's auth socket and delivers by LMTP into Dovecot, so a message sent through
 * Postfix can be read back over IMAP or POP3.
 *
 * `npm run test:e2e` installs the packages first (scripts/e2e-deps.sh); started without them,
 * or without root, `start` fails with what is missing, so the run fails instead of passing
 * while testing nothing.
 */
export interface MailServersOptions {
  /** The token endpoint's introspection URL (TokenEndpointPeer.introspectionUrl). */
  introspectionUrl: string;
  /** Mail domains Postfix accepts and hands to Dovecot. */
  domains: string[];
}

export interface StoredMessage {
  uid: number;
  flags: string[];
}

/** The unprivileged system user Debian's packages create; Dovecot refuses to run mail processes as root. */
const MAIL_USER = 'mail';

export class MailServers {
  readonly dir: string;
  private readonly dovecotConf: string;
  private readonly postfixConfDir: string;
  private dovecot?: ChildProcess;
  private postfix?: ChildProcess;
  private readonly output: string[] = [];
  private ports = { imaps: 0, pop3s: 0, submission: 0, submissions: 0 };
  /** If the test process ends without `stop` (a crash), the servers' process groups go with it. */
  private readonly killOnExit = () => {
    for (const child of [this.dovecot, this.postfix]) if (child) killGroup(child, 'SIGKILL');
  };

  constructor(private readonly options: MailServersOptions) {
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'm365-e2e-'));
    this.dovecotConf = path.join(this.dir, 'dovecot', 'dovecot.conf');
    this.postfixConfDir = path.join(this.dir, 'postfix', 'etc');
  }

  /** `host:port` for `profile.endpoints.imap` (implicit TLS). */
  get imap(): string {
    return `127.0.0.1:${this.ports.imaps}`;
  }

  /** `host:port` for `profile.endpoints.pop3` (implicit TLS). */
  get pop3(): string {
    return `127.0.0.1:${this.ports.pop3s}`;
  }

  /** `host:port` for `profile.endpoints.smtp` (STARTTLS, SASL through Dovecot). */
  get smtp(): string {
    return `127.0.0.1:${this.ports.submission}`;
  }

  /**
   * `host:port` for `profile.endpoints.smtp` with `send.smtpSecurity: "implicit"`: Postfix's
   * submissions service (RFC 8314, port 465 style: TLS from the first byte, smtpd_tls_wrappermode),
   * SASL through Dovecot as on the submission service. It logs as postfix/submissions/smtpd.
   */
  get submissions(): string {
    return `127.0.0.1:${this.ports.submissions}`;
  }

  private get postfixLog(): string {
    return path.join(this.dir, 'postfix', 'maillog');
  }

  /** Everything both servers logged so far (for assertions and failure messages). */
  logs(): string {
    const postfix = existsSync(this.postfixLog) ? readFileSync(this.postfixLog, 'utf8') : '';
    return `${this.output.join('')}${postfix}`;
  }

  /** Starts both servers; on failure stops whatever did start, so no process outlives the run. */
  async start(): Promise<this> {
    try {
      await this.startServers();
    } catch (error) {
      await this.stop();
      throw error;
    }
    return this;
  }

  private async startServers(): Promise<void> {
    await requirePrograms();
    const [imaps, pop3s, submission, submissions] = await freePorts(4);
    this.ports = { imaps: imaps!, pop3s: pop3s!, submission: submission!, submissions: submissions! };
    // The mail user and Postfix's daemons must reach files below the folder after dropping root.
    chmodSync(this.dir, 0o755);
    this.writeTls();
    this.writeDovecotConfig();
    this.writePostfixConfig();
    process.once('exit', this.killOnExit);
    this.dovecot = this.spawnLogged('dovecot', ['-F', '-c', this.dovecotConf]);
    await this.waitForPort(this.ports.imaps, 'dovecot', this.dovecot);
    await this.waitForPort(this.ports.pop3s, 'dovecot', this.dovecot);
    // start-fg keeps Postfix's master in the spawned process group, so killOnExit reaches it.
    this.postfix = this.spawnLogged('postfix', ['-c', this.postfixConfDir, 'start-fg']);
    await this.waitForPort(this.ports.submission, 'postfix', this.postfix);
    await this.waitForPort(this.ports.submissions, 'postfix', this.postfix);
  }

  async stop(): Promise<void> {
    if (this.postfix) {
      const postfix = this.postfix;
      await run('postfix', ['-c', this.postfixConfDir, 'stop']).catch(() => killGroup(postfix, 'SIGTERM'));
      await stopped(postfix);
    }
    if (this.dovecot) {
      killGroup(this.dovecot, 'SIGTERM');
      await stopped(this.dovecot);
    }
    process.removeListener('exit', this.killOnExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stores a message in a mailbox's folder as it is, byte for byte (no delivery headers added). */
  async deliver(mailbox: string, raw: Buffer, folder = 'INBOX'): Promise<void> {
    await this.doveadm(['save', '-u', mailbox, '-m', folder], raw);
  }

  /** Expunges every message and removes every folder but INBOX, so each test starts from an empty mailbox. */
  async empty(mailbox: string): Promise<void> {
    await this.doveadm(['expunge', '-u', mailbox, 'mailbox', '*', 'all']);
    const others = (await this.folders(mailbox)).filter((f) => f !== 'INBOX');
    if (others.length > 0) await this.doveadm(['mailbox', 'delete', '-u', mailbox, ...others]);
  }

  async messages(mailbox: string, folder = 'INBOX'): Promise<StoredMessage[]> {
    const out = await this.doveadm(['-f', 'tab', 'fetch', '-u', mailbox, 'uid flags', 'mailbox', folder, 'all']);
    return out
      .split('\n')
      .slice(1)
      .filter((line) => line.trim() !== '')
      .map((line) => {
        const [uid, flags = ''] = line.split('\t');
        return { uid: Number(uid), flags: flags.split(' ').filter((f) => f !== '' && f !== '\\Recent') };
      });
  }

  async folders(mailbox: string): Promise<string[]> {
    return (await this.doveadm(['mailbox', 'list', '-u', mailbox])).split('\n').filter((f) => f !== '');
  }

  async uidValidity(mailbox: string, folder = 'INBOX'): Promise<number> {
    return Number((await this.doveadm(['-f', 'flow', 'mailbox', 'status', '-u', mailbox, 'uidvalidity', folder])).replace(/^.*uidvalidity=/, ''));
  }

  /** Waits, bounded, until `folder` holds `count` messages (Postfix delivers asynchronously). */
  async waitForMessages(mailbox: string, count: number, folder = 'INBOX', timeoutMs = 30_000): Promise<StoredMessage[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.messages(mailbox, folder).catch(() => []);
      if (found.length >= count) return found;
      if (Date.now() > deadline) throw new Error(`${mailbox}/${folder} holds ${found.length} of ${count} messages after ${timeoutMs} ms; server logs:\n${this.logs()}`);
      await delay(200);
    }
  }

  private async doveadm(args: string[], input?: Buffer): Promise<string> {
    const child = spawn('doveadm', ['-c', this.dovecotConf, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.end(input);
    const code = await exited(child);
    if (code !== 0) throw new Error(`doveadm ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString()}`);
    return Buffer.concat(out).toString();
  }

  private writeTls(): void {
    const tls = serverTls();
    const dir = path.join(this.dir, 'tls');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'server.pem'), tls.cert);
    writeFileSync(path.join(dir, 'server.key'), tls.key, { mode: 0o600 });
    writeFileSync(path.join(dir, 'ca.pem'), tls.ca);
  }

  private writeDovecotConfig(): void {
    const d = path.join(this.dir, 'dovecot');
    const tls = path.join(this.dir, 'tls');
    const mail = path.join(d, 'mail');
    for (const sub of ['run', 'state', 'mail']) mkdirSync(path.join(d, sub), { recursive: true });
    const { uid, gid } = systemIds(MAIL_USER);
    chownSync(mail, uid, gid);
    writeFileSync(
      path.join(d, 'oauth2.conf.ext'),
      [
        // RFC 7662: POST token=<bearer> to the introspection URL, expect {"active": true, "email": ...}.
        'introspection_mode = post',
        `introspection_url = ${this.options.introspectionUrl}`,
        // The introspected email must equal the user named in the XOAUTH2 message: a token
        // granted for another mailbox is refused, as Exchange refuses it.
        'username_attribute = email',
        'active_attribute = active',
        'active_value = true',
        `tls_ca_cert_file = ${path.join(tls, 'ca.pem')}`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      this.dovecotConf,
      `# Written by test/e2e/mailServers.ts for one test run.
instance_name = m365-e2e-${path.basename(this.dir)}
base_dir = ${path.join(d, 'run')}
state_dir = ${path.join(d, 'state')}
log_path = /dev/stderr
protocols = imap pop3 lmtp
listen = 127.0.0.1
ssl = required
ssl_cert = <${path.join(tls, 'server.pem')}
ssl_key = <${path.join(tls, 'server.key')}
# Mail processes run as Debian's "mail" user (uid 8), below the default first_valid_uid of 500.
first_valid_uid = 1
mail_location = maildir:${mail}/%u
# Office 365 offers XOAUTH2 only; imapflow would pick OAUTHBEARER whenever it is offered,
# which would test a path production never takes.
auth_mechanisms = xoauth2
auth_verbose = yes
# A refused token must not slow the tests that follow into timeouts.
auth_failure_delay = 0
passdb {
  driver = oauth2
  mechanisms = xoauth2
  args = ${path.join(d, 'oauth2.conf.ext')}
}
userdb {
  driver = static
  args = uid=${MAIL_USER} gid=${MAIL_USER} home=${mail}/%u allow_all_users=yes
}
service anvil {
  # No auth penalty: each refused login would otherwise delay the next ones from 127.0.0.1.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
${implicitTlsOnly('imap', this.ports.imaps)}
${implicitTlsOnly('pop3', this.ports.pop3s)}
service lmtp {
  unix_listener lmtp {
    user = postfix
    mode = 0600
  }
}
service auth {
  unix_listener auth-postfix {
    user = postfix
    mode = 0600
  }
}
`,
    );
  }

  private writePostfixConfig(): void {
    const p = path.join(this.dir, 'postfix');
    const run = path.join(this.dir, 'dovecot', 'run');
    const tls = path.join(this.dir, 'tls');
    for (const sub of ['etc', 'queue', 'data']) mkdirSync(path.join(p, sub), { recursive: true });
    chmodSync(this.postfixConfDir, 0o755);
    // Postfix keeps its lock files there and checks that it owns it.
    const { uid, gid } = systemIds('postfix');
    chownSync(path.join(p, 'data'), uid, gid);
    writeFileSync(
      path.join(this.postfixConfDir, 'main.cf'),
      `# Written by test/e2e/mailServers.ts for one test run.
compatibility_level = 3.6
queue_directory = ${path.join(p, 'queue')}
data_directory = ${path.join(p, 'data')}
myhostname = mx.e2e.test
mydomain = e2e.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
alias_maps =
alias_database =
# Logging without syslog. Not /dev/stdout: Node's child stdio pipes are sockets, which
# cannot be opened by path (ENXIO), and postlog then fails start-up. A file outside the
# default prefixes (/var, /dev/stdout) must be allowed by maillog_file_prefixes.
maillog_file = ${this.postfixLog}
maillog_file_prefixes = ${this.dir}
virtual_mailbox_domains = ${this.options.domains.join(', ')}
virtual_transport = lmtp:unix:${path.join(run, 'lmtp')}
smtpd_tls_cert_file = ${path.join(tls, 'server.pem')}
smtpd_tls_key_file = ${path.join(tls, 'server.key')}
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = ${path.join(run, 'auth-postfix')}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
`,
    );
    // Only what the submission services and LMTP delivery need; nothing chrooted, so the
    // absolute socket paths above work. Both services take main.cf's TLS and SASL settings;
    // submissions wraps the whole session in TLS (no STARTTLS), logs its handshakes under
    // its own name and records the TLS in the Received header, so a test can tell it served.
    const services = [
      `${this.smtp} inet n - n - - smtpd`,
      `${this.submissions} inet n - n - - smtpd`,
      '  -o syslog_name=postfix/submissions',
      '  -o smtpd_tls_wrappermode=yes',
      '  -o smtpd_tls_loglevel=1',
      '  -o smtpd_tls_received_header=yes',
      'cleanup unix n - n - 0 cleanup',
      'qmgr unix n - n 300 1 qmgr',
      'tlsmgr unix - - n 1000? 1 tlsmgr',
      'rewrite unix - - n - - trivial-rewrite',
      'bounce unix - - n - 0 bounce',
      'defer unix - - n - 0 bounce',
      'trace unix - - n - 0 bounce',
      'verify unix - - n - 1 verify',
      'proxymap unix - - n - - proxymap',
      'error unix - - n - - error',
      'retry unix - - n - - error',
      'discard unix - - n - - discard',
      'lmtp unix - - n - - lmtp',
      'anvil unix - - n - 1 anvil',
      'scache unix - - n - 1 scache',
      'postlog unix-dgram n - n - 1 postlogd',
      '',
    ];
    writeFileSync(path.join(this.postfixConfDir, 'master.cf'), services.join('\n'));
  }

  private spawnLogged(command: string, args: string[]): ChildProcess {
    // A process group of its own: stopping it reaches every daemon the server started.
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const keep = (chunk: Buffer) => this.output.push(`[${command}] ${chunk.toString()}`);
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('error', (error) => this.output.push(`[${command}] ${String(error)}\n`));
    return child;
  }

  private async waitForPort(port: number, name: string, child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (!(await accepts(port))) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode} before listening on ${port}:\n${this.logs()}`);
      if (Date.now() > deadline) throw new Error(`${name} is not listening on 127.0.0.1:${port} after 20 s:\n${this.logs()}`);
      await delay(100);
    }
  }
}

/** A login service listening with implicit TLS only (993/995 style), its plain-text listener off. */
function implicitTlsOnly(protocol: 'imap' | 'pop3', port: number): string {
  return `service ${protocol}-login {
  inet_listener ${protocol} {
    port = 0
  }
  inet_listener ${protocol}s {
    port = ${port}
    ssl = yes
  }
}`;
}

/** The packages' programs, or an error naming what to install. Also refuses to run without root. */
async function requirePrograms(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the e2e suite starts Dovecot and Postfix and needs root');
  const missing: string[] = [];
  for (const program of ['dovecot', 'doveadm', 'postfix']) {
    await run('sh', ['-c', `command -v ${program}`]).catch(() => missing.push(program));
  }
  if (missing.length > 0) throw new Error(`not installed: ${missing.join(', ')}; run \`bash scripts/e2e-deps.sh\` (as root) first`);
}

function systemIds(user: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error(`no system user "${user}": is the package that creates it installed?`);
  return { uid: Number(uid), gid: Number(gid) };
}

async function freePorts(count: number): Promise<number[]> {
  // Held open together, so the kernel hands out distinct ports; closed just before the servers bind them.
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

/** Whether something accepts a TCP connection on the loopback port. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    // ESRCH: the group is already gone, which is what was wanted.
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Waits for a server's exit, bounded: one that ignores SIGTERM for 15 s is killed. */
async function stopped(child: ChildProcess): Promise<void> {
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 15_000);
  await exited(child);
  clearTimeout(timer);
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('close', (code) => resolve(code)));
}
