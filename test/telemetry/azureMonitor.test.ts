import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { listenHttps, type LoopbackHttpsServer } from '../peers/httpsServer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { setProcessEnv } from '../support/processEnv.js';

/** Application Insights' ingestion endpoint as the Azure Monitor exporter calls it: POST <IngestionEndpoint>/v2.1/track, a gzipped JSON array of envelopes. */
class IngestionPeer {
  readonly envelopes: Array<{ name: string; data?: { baseData?: Record<string, unknown> } }> = [];
  readonly authorizations: string[] = [];
  private server?: LoopbackHttpsServer;

  get url(): string {
    return this.server!.url;
  }

  async start(): Promise<void> {
    this.server = await listenHttps((req, res) => this.handle(req, res), (res) => {
      res.writeHead(500);
      res.end();
    });
  }

  stop(): Promise<void> {
    return this.server!.stop();
  }

  text(): string {
    return JSON.stringify(this.envelopes);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method !== 'POST' || !req.url?.endsWith('/v2.1/track')) {
      res.writeHead(404);
      res.end();
      return;
    }
    let body = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
    const items = JSON.parse(body.toString('utf8')) as IngestionPeer['envelopes'];
    this.envelopes.push(...items);
    this.authorizations.push(String(req.headers.authorization ?? ''));
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, errors: [] }));
  }
}

/**
 * APPLICATIONINSIGHTS_CONNECTION_STRING: the same spans and metrics go to Azure Monitor through
 * Microsoft's exporter, authenticated with Entra as infra/ sets it up (local authentication off,
 * APPLICATIONINSIGHTS_AUTHENTICATION_STRING naming the user-assigned identity), against a loopback
 * ingestion endpoint and managed identity endpoint.
 */
describe('OpenTelemetry to Azure Monitor (Application Insights) with Entra authentication', () => {
  const entra = new TokenEndpointPeer();
  const ingestion = new IngestionPeer();
  const identity = '7d1c0e55-2a3b-4c4d-9e8f-0a1b2c3d4e5f';
  let restoreEnv: () => void;
  let dir: string;

  before(async () => {
    await Promise.all([entra.start(), ingestion.start()]);
    entra.userAssignedIdentities.add(identity);
    // The exporter's own usage reports (statsbeat) go to Microsoft's hosts: off here, where only loopback is reachable.
    restoreEnv = setProcessEnv({ IDENTITY_ENDPOINT: entra.managedIdentityEndpoint, IDENTITY_HEADER: entra.identityHeader, APPLICATION_INSIGHTS_NO_STATSBEAT: 'true', APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true', APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true' });
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-azmon-'));
  });
  after(async () => {
    restoreEnv();
    await Promise.all([entra.stop(), ingestion.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a send arrives as telemetry items with the identity\'s token for Azure Monitor, and nothing private', async () => {
    const runtime = new MailRuntime({
      env: {
        MAIL_DIR: dir,
        APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=${ingestion.url}/`,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: `Authorization=AAD;ClientId=${identity}`,
      },
      logger: silentLogger,
    });
    try {
      await sendMail(runtime, { to: 'payroll-5512@fabrikam.example', subject: 'Salary slip March', text: 'net 4211.07' });
    } finally {
      await runtime.close();
    }
    const text = ingestion.text();
    assert.match(text, /"mail\.send"/, text.slice(0, 500));
    assert.match(text, /"mail\.sent"/);
    assert.ok(ingestion.authorizations.length > 0);
    for (const authorization of ingestion.authorizations) {
      const token = authorization.replace(/^Bearer /, '');
      const issued = entra.validate(token, 'https://monitor.azure.com');
      assert.equal(issued?.clientId, identity, `${authorization.slice(0, 20)}: a token of the user-assigned identity for Azure Monitor`);
    }
    for (const value of ['payroll-5512@fabrikam.example', 'Salary slip March', 'net 4211.07']) assert.equal(text.includes(value), false, value);
  });
});
