import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { simpleParser } from 'mailparser';
import { createLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { setProcessEnv } from '../support/processEnv.js';

const TENANT = 'contoso-tenant';
/** The Function App's own identity, which reads the vault through DefaultAzureCredential (AZURE_*). */
const VAULT_READER = { tenantId: TENANT, clientId: 'function-app', secret: 'function-app-vault-secret' };

/**
 * Issue 3: "for each transport, a rotated secret in Key Vault is picked up after one auth
 * failure". Everything is real except the servers: SecretClient against the Key Vault
 * stand-in, @azure/identity against the token endpoint, nodemailer against the SMTP server,
 * the Graph client against the Graph stand-in, all through sendMail as the send function runs it.
 */
describe('a client secret rotated in Key Vault is picked up by each transport after one authentication failure', () => {
  const entra = new TokenEndpointPeer();
  const vault = new KeyVaultPeer(entra, TENANT);
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: ['smtp-desk@contoso.com'] });
  const graph = new GraphPeer(entra);
  const logLines: string[] = [];
  let restoreEnv: () => void;

  before(async () => {
    await entra.start();
    await vault.start();
    await smtp.start();
    await graph.start();
    entra.register(VAULT_READER);
    graph.addMailbox('graph-desk@contoso.com');
    restoreEnv = setProcessEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: entra.url });
  });
  after(async () => {
    restoreEnv();
    await Promise.all([graph.stop(), smtp.stop(), vault.stop()]);
    await entra.stop();
  });

  function runtime(): MailRuntime {
    const profile = (name: string, via: 'smtp' | 'graph') => ({
      mailbox: `${name}@contoso.com`, tenantId: TENANT, clientId: `${name}-app`,
      auth: { type: 'clientSecret', secret: `${name}-client-secret` },
      send: { via },
      endpoints: { authority: entra.url, smtp: smtp.endpoint, graph: graph.url },
    });
    const env = {
      MAIL_PROFILES: JSON.stringify({ profiles: { 'smtp-desk': profile('smtp-desk', 'smtp'), 'graph-desk': profile('graph-desk', 'graph') } }),
      KEY_VAULT_URL: vault.url,
      KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true',
      AZURE_AUTHORITY_HOST: entra.url,
    };
    const sink = { log: (l: unknown) => logLines.push(String(l)), warn: (l: unknown) => logLines.push(String(l)), error: (l: unknown) => logLines.push(String(l)) };
    return new MailRuntime({ env, logger: createLogger(sink) });
  }

  /** Reads of the secret's value the vault answered (its 401 challenge to a first, token-less request is not one). */
  const valueReads = (name: string) => vault.secretReads(`${name}-client-secret`).filter((q) => q.status === 200).length;

  /** The app registration gets a new secret, the vault follows, and tokens issued for the old one stop working. */
  function rotate(name: string, next: string): void {
    entra.apps.get(`${name}-app`)!.secret = next;
    vault.setSecret(`${name}-client-secret`, next);
    for (const [token, issued] of entra.issued) if (issued.clientId === `${name}-app`) entra.issued.delete(token);
  }

  for (const [name, via] of [['smtp-desk', 'smtp'], ['graph-desk', 'graph']] as const) {
    it(`${via}: the send after a rotation succeeds, with exactly one refused attempt and one more read of the vault`, async () => {
      entra.register({ tenantId: TENANT, clientId: `${name}-app`, secret: `${name}-secret-1` });
      vault.setSecret(`${name}-client-secret`, `${name}-secret-1`);
      const r = runtime();
      try {
        await sendMail(r, { profile: name, to: 'ann@example.com', subject: 'before rotation', text: 'one' });
        assert.equal(valueReads(name), 1);

        rotate(name, `${name}-secret-2`);
        // A pooled SMTP session stays authenticated; the server ends it, as Exchange does with idle ones.
        if (via === 'smtp') smtp.closeConnections();
        const refusedBefore = via === 'smtp' ? smtp.authAttempts.filter((a) => !a.accepted).length : graph.apiRequests('POST', /\/sendMail$/).filter((q) => q.status === 401).length;
        const appRequestsBefore = entra.tokenRequests().filter((t) => t.clientId === `${name}-app`).length;

        const outcome = await sendMail(r, { profile: name, to: 'bob@example.com', subject: 'after rotation', text: 'two' });

        assert.equal(outcome.status, 'sent');
        assert.equal(valueReads(name), 2, 'the secret is re-read from the vault exactly once');
        const refused = via === 'smtp' ? smtp.authAttempts.filter((a) => !a.accepted).length : graph.apiRequests('POST', /\/sendMail$/).filter((q) => q.status === 401).length;
        assert.equal(refused - refusedBefore, 1, 'exactly one refused attempt with the old token');
        const appRequests = entra.tokenRequests().filter((t) => t.clientId === `${name}-app`).slice(appRequestsBefore);
        assert.deepEqual(appRequests.map((t) => t.outcome), ['issued'], 'one token request, made with the new secret');
        if (via === 'smtp') {
          const last = smtp.messages.at(-1)!;
          assert.deepEqual(last.envelope.to, ['bob@example.com']);
          assert.equal((await simpleParser(last.raw)).subject, 'after rotation');
        } else {
          const last = graph.sent.at(-1)!;
          assert.equal(last.mailbox, `${name}@contoso.com`);
          assert.equal(last.message.subject, 'after rotation');
        }
      } finally {
        await r.close();
      }
    });
  }

  it('neither secret value appears in any log line', () => {
    assert.ok(logLines.length >= 4);
    for (const secret of ['smtp-desk-secret-1', 'smtp-desk-secret-2', 'graph-desk-secret-1', 'graph-desk-secret-2', VAULT_READER.secret]) {
      const leaked = logLines.find((l) => l.includes(secret));
      assert.equal(leaked, undefined, `${secret} leaked into a log line`);
    }
  });
});
