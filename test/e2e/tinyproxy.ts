import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { portNobodyListensOn } from '../contract/loopback.js';
import { accepts } from './mailServers.js';

export interface TinyproxyOptions {
  /** The ports CONNECT may reach (tinyproxy's ConnectPort); a tunnel to any other is refused with 403. */
  connectPorts: number[];
  /** Basic credentials the proxy wants (tinyproxy's BasicAuth); without them it asks for none. */
  credentials?: { user: string; password: string };
}

/**
 * Debian's tinyproxy (scripts/e2e-deps.sh installs it) on a loopback port, with its own
 * configuration and log in a temporary folder: the real corporate proxy of the e2e suite. It runs in
 * the foreground (-d) as the current user, and logs at level Connect, which writes a line for every
 * CONNECT request it is sent (`Request (file descriptor N): CONNECT host:port HTTP/1.1`).
 */
export class Tinyproxy {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'm365-mail-tinyproxy-'));
  port = 0;
  private child?: ChildProcess;

  constructor(private readonly options: TinyproxyOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private get logFile(): string {
    return path.join(this.dir, 'tinyproxy.log');
  }

  async start(): Promise<this> {
    if (spawnSync('tinyproxy', ['-v']).error) throw new Error('tinyproxy is not installed: run `bash scripts/e2e-deps.sh` as root');
    this.port = await portNobodyListensOn();
    const config = path.join(this.dir, 'tinyproxy.conf');
    writeFileSync(
      config,
      [
        `Port ${this.port}`,
        'Listen 127.0.0.1',
        'Timeout 60',
        `LogFile "${this.logFile}"`,
        'LogLevel Connect',
        'MaxClients 50',
        'Allow 127.0.0.1',
        'DisableViaHeader Yes',
        ...this.options.connectPorts.map((p) => `ConnectPort ${p}`),
        ...(this.options.credentials ? [`BasicAuth ${this.options.credentials.user} ${this.options.credentials.password}`] : []),
        '',
      ].join('\n'),
    );
    this.child = spawn('tinyproxy', ['-d', '-c', config], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    this.child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    this.child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    const deadline = Date.now() + 20_000;
    while (!(await accepts(this.port))) {
      if (this.child.exitCode !== null) throw new Error(`tinyproxy exited with ${this.child.exitCode}:\n${output}${this.log()}`);
      if (Date.now() > deadline) throw new Error(`tinyproxy is not listening on 127.0.0.1:${this.port} after 20 s:\n${output}${this.log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return this;
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** The host:port of every CONNECT request the log shows, in order. */
  connects(): string[] {
    return [...this.log().matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((m) => m[1]!);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
