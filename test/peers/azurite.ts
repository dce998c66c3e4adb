import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The well-known development storage account Azurite serves (documented, not a secret). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

const SERVICES = ['Blob', 'Queue', 'Table'] as const;
type Service = (typeof SERVICES)[number];

/**
 * The installed Azurite emulator as a child process on 127.0.0.1, each service on a port the
 * OS picks (`--*Port 0`; Azurite prints the port it bound). In memory, silent, and with
 * `--skipApiVersionCheck`: current Storage SDKs send an API version newer than the
 * emulator knows, which it otherwise rejects.
 */
export class AzuritePeer {
  private child?: ChildProcess;
  private workspace?: string;
  private readonly ports = new Map<Service, number>();

  /**
   * `oauth`: Azurite as an account with Entra authentication: https with the test CA's server
   * certificate (TEST_TLS_DIR, which test/run.js sets) and `--oauth basic`, which accepts a bearer
   * token whose issuer is Entra's (https://sts.windows.net/<tenant>/), whose audience is Storage's
   * and whose lifetime holds (the signature is not checked), besides the account key.
   */
  constructor(private readonly options: { oauth?: boolean } = {}) {}

  /** A service's endpoint, as the identity-based `AzureWebJobsStorage__<service>ServiceUri` settings name it. */
  serviceUri(service: Service): string {
    return `${this.options.oauth ? 'https' : 'http'}://127.0.0.1:${this.port(service)}/${ACCOUNT}`;
  }

  get connectionString(): string {
    const endpoint = (service: Service) => `${service}Endpoint=${this.serviceUri(service)}`;
    return [`DefaultEndpointsProtocol=${this.options.oauth ? 'https' : 'http'}`, `AccountName=${ACCOUNT}`, `AccountKey=${ACCOUNT_KEY}`, ...SERVICES.map(endpoint)].join(';') + ';';
  }

  port(service: Service): number {
    const port = this.ports.get(service);
    if (port === undefined) throw new Error('Azurite is not started');
    return port;
  }

  /** Stops the emulator's process without closing its sockets: every request hangs, as on a storage outage that never answers. */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async start(): Promise<void> {
    this.workspace = mkdtempSync(path.join(os.tmpdir(), 'azurite-'));
    const entry = require.resolve('azurite/dist/src/azurite.js');
    const child = spawn(
      process.execPath,
      ['--require', path.join(__dirname, 'azuriteRemoves.js'), entry, '--blobPort', '0', '--queuePort', '0', '--tablePort', '0', '--blobHost', '127.0.0.1', '--queueHost', '127.0.0.1', '--tableHost', '127.0.0.1',
        '--inMemoryPersistence', '--extentMemoryLimit', '512', '--silent', '--skipApiVersionCheck', '--loose', '--disableTelemetry', ...this.oauthArgs()],
      { cwd: this.workspace, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`Azurite did not start within 30 s:\n${output}`)), 30_000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        reject(error);
      };
      child.once('exit', (code) => fail(new Error(`Azurite exited with ${code}:\n${output}`)));
      child.once('error', fail);
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        for (const m of output.matchAll(/Azurite (Blob|Queue|Table) service is successfully listening at https?:\/\/127\.0\.0\.1:(\d+)/g)) {
          this.ports.set(m[1] as Service, Number(m[2]));
        }
        if (this.ports.size === SERVICES.length) {
          clearTimeout(timer);
          child.stdout?.off('data', onData);
          child.removeAllListeners('exit');
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
    });
    // Keep draining its output so a full pipe never blocks the emulator.
    child.stdout?.resume();
    child.stderr?.resume();
  }

  private oauthArgs(): string[] {
    if (!this.options.oauth) return [];
    const dir = process.env.TEST_TLS_DIR;
    if (!dir) throw new Error('Azurite with OAuth serves https with the test CA: run the tests through test/run.js, which sets TEST_TLS_DIR');
    return ['--oauth', 'basic', '--cert', path.join(dir, 'server.pem'), '--key', path.join(dir, 'server.key')];
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const forced = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(forced);
    }
    if (this.workspace) rmSync(this.workspace, { recursive: true, force: true });
    this.ports.clear();
  }
}
