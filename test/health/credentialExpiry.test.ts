import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { healthProfiles } from '../../functions/healthProfiles.js';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { isMailError } from '../../shared/errors.js';
import { profilesHealth, type ProfilesHealthReport } from '../../shared/health/report.js';
import { credentialExpiryOf } from '../../shared/identity/credentialExpiry.js';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { KeyVaultPeer } from '../peers/keyVaultPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { setProcessEnv } from '../support/processEnv.js';
import { capturingLogger } from '../support/receiveHarness.js';
import { runNode } from '../support/runNode.js';

const TENANT = 'contoso-tenant';
const DAY = 24 * 3600 * 1000;
/** The Function App's own identity, which reads the vault through DefaultAzureCredential (AZURE_*). */
const VAULT_READER = { tenantId: TENANT, clientId: 'function-app', secret: 'function-app-vault-secret-Xy7' };
const MAILBOX = 'desk@contoso.com';

/** A value no output may ever show: every secret in this file is one of these. */
const secretValue = (name: string) => `${name}-VALUE-q9~Zx`;

async function certificatePem(notAfter: Date): Promise<string> {
  const selfsigned = require('selfsigned') as typeof import('selfsigned');
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'expiry-cert' }], { keySize: 2048, notBeforeDate: new Date(Date.now() - DAY), notAfterDate: notAfter });
  return `${pems.private}\n${pems.cert}`;
}

/**
 * Issue 9, item 3: client secrets and certificates expire, and mail stops that day. The expiry
 * date of the Key Vault secret version in use (its `exp` attribute) and a certificate's notAfter
 * are reported per profile in GET /api/health/profiles, `m365-mail health` and `m365-mail test`,
 * warned about in the log from CREDENTIAL_EXPIRY_WARNING_DAYS before, and kept for a metric.
 * Everything real but the servers: SecretClient against the Key Vault stand-in.
 */
describe('credential expiry: days left per profile, before the outage', () => {
  const entra = new TokenEndpointPeer();
  const vault = new KeyVaultPeer(entra, TENANT);
  const graph = new GraphPeer(entra);
  let restoreEnv: () => void;
  const pems: Record<string, string> = {};
  /** Every secret value stored, for the checks that none is shown. */
  const values: string[] = [];
  const expiries = new Map<string, Date>();

  const store = (name: string, value: string, expiresOn?: Date) => {
    values.push(value);
    // Key Vault keeps whole seconds (`exp` is Unix seconds).
    if (expiresOn) expiries.set(name, new Date(Math.floor(expiresOn.getTime() / 1000) * 1000));
    vault.setSecret(name, value, expiresOn ? { expiresOn } : {});
  };

  before(async () => {
    await Promise.all([entra.start(), vault.start(), graph.start()]);
    entra.register(VAULT_READER);
    graph.addMailbox(MAILBOX);
    restoreEnv = setProcessEnv({ AZURE_TENANT_ID: TENANT, AZURE_CLIENT_ID: VAULT_READER.clientId, AZURE_CLIENT_SECRET: VAULT_READER.secret, AZURE_AUTHORITY_HOST: entra.url });
    // An hour past the whole days, so that days left is exact however long the test takes.
    store('fresh-secret', secretValue('fresh'), new Date(Date.now() + 90 * DAY + 3600_000));
    store('soon-secret', secretValue('soon'), new Date(Date.now() + 10 * DAY + 3600_000));
    store('expired-secret', secretValue('expired'), new Date(Date.now() - 2 * DAY + 3600_000));
    store('undated-secret', secretValue('undated'));
    pems.cert = await certificatePem(new Date(Date.now() + 20 * DAY + 3600_000));
    store('cert-pem', pems.cert);
    // A certificate imported into the vault: the version's exp is earlier than what the PEM says.
    pems.vaultCert = await certificatePem(new Date(Date.now() + 200 * DAY));
    store('vault-cert-pem', pems.vaultCert, new Date(Date.now() + 5 * DAY + 3600_000));
    entra.register({ tenantId: TENANT, clientId: 'soon-app', secret: secretValue('soon') });
    ALL = profilesOf();
  });
  after(async () => {
    restoreEnv();
    setRuntime(undefined);
    await Promise.all([graph.stop(), vault.stop()]);
    await entra.stop();
  });

  const profile = (name: string, auth: Record<string, unknown>) => ({
    mailbox: MAILBOX,
    tenantId: TENANT,
    clientId: `${name}-app`,
    auth,
    send: { via: 'graph' },
    endpoints: { authority: entra.url, graph: graph.url },
  });
  const profilesOf = () => ({
    fresh: profile('fresh', { type: 'clientSecret', secret: 'fresh-secret' }),
    soon: profile('soon', { type: 'clientSecret', secret: 'soon-secret' }),
    expired: profile('expired', { type: 'clientSecret', secret: 'expired-secret' }),
    undated: profile('undated', { type: 'clientSecret', secret: 'undated-secret' }),
    missing: profile('missing', { type: 'clientSecret', secret: 'missing-secret' }),
    cert: profile('cert', { type: 'certificate', certificate: 'cert-pem' }),
    vaultCert: profile('vaultCert', { type: 'certificate', certificate: 'vault-cert-pem' }),
    delegatedPublic: profile('delegatedPublic', { type: 'delegated', refreshToken: 'some-refresh-token' }),
    robot: profile('robot', { type: 'managedIdentity' }),
  });
  /** The profiles, once the peers listen (their URLs are in the endpoints). */
  let ALL: ReturnType<typeof profilesOf>;

  function vaultEnv(profiles: Record<string, unknown>, settings: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { MAIL_PROFILES: JSON.stringify({ profiles }), KEY_VAULT_URL: vault.url, KEY_VAULT_DISABLE_CHALLENGE_RESOURCE_VERIFICATION: 'true', AZURE_AUTHORITY_HOST: entra.url, ...settings };
  }

  function runtime(profiles: Record<string, unknown>, settings: NodeJS.ProcessEnv = {}, logs: string[] = []): MailRuntime {
    return new MailRuntime({ env: vaultEnv(profiles, settings), logger: capturingLogger(logs) });
  }

  function cli(args: string[], profiles: Record<string, unknown>): ReturnType<typeof runNode> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...vaultEnv(profiles) };
    for (const key of ['MAIL_PROFILES_FILE', 'DEFAULT_PROFILE', 'CREDENTIAL_EXPIRY_WARNING_DAYS']) delete env[key];
    return runNode([path.join(APP_ROOT, 'dist', 'cli', 'm365-mail.js'), ...args], { cwd: APP_ROOT, env });
  }

  const table = (report: ProfilesHealthReport) => report.credentials.map((c) => [c.profile, c.credential, c.state, c.daysLeft, c.source]);

  it('GET /api/health/profiles lists every profile with a secret or certificate: days left, state and where the date comes from; an expired or unreadable one makes it not ok', async () => {
    const r = runtime(ALL);
    setRuntime(r);
    try {
      const response = await healthProfiles(new HttpRequest({ method: 'GET', url: 'http://localhost/api/health/profiles' }), new InvocationContext({ functionName: 'healthProfiles', logHandler: () => {} }));
      assert.equal(response.status, 200);
      const body = response.body as string;
      const report = JSON.parse(body) as ProfilesHealthReport;
      assert.equal(report.ok, false);
      assert.equal(report.credentialExpiryWarningDays, 30);
      assert.deepEqual(table(report), [
        ['fresh', 'clientSecret', 'ok', 90, 'keyVault'],
        ['soon', 'clientSecret', 'expiring', 10, 'keyVault'],
        ['expired', 'clientSecret', 'expired', -2, 'keyVault'],
        ['undated', 'clientSecret', 'unknown', null, null],
        ['missing', 'clientSecret', 'unreadable', null, null],
        ['cert', 'certificate', 'expiring', 20, 'certificate'],
        ['vaultCert', 'certificate', 'expiring', 5, 'keyVault'],
      ]);
      const by = (name: string) => report.credentials.find((c) => c.profile === name)!;
      assert.equal(by('soon').expiresOn, expiries.get('soon-secret')!.toISOString());
      assert.match(by('soon').hint!, /^The client secret in "soon-secret" expires on \S+ \(10 days left\): create a new client secret on the app registration/);
      assert.match(by('expired').hint!, /^The client secret in "expired-secret" expired on /);
      assert.match(by('undated').hint!, /has no expiration date: set it .*az keyvault secret set-attributes --expires/);
      assert.deepEqual([by('missing').code, by('fresh').hint], ['ESECRET_NOT_FOUND', undefined]);
      assert.match(by('cert').hint!, /upload its public part to the app registration/);
      for (const value of values) assert.ok(!body.includes(value), 'a secret value is in the answer');
      assert.ok(!body.includes('PRIVATE KEY'));
    } finally {
      setRuntime(undefined);
      await r.close();
    }
  });

  it('with nothing expired or unreadable the report is ok: expiring is a warning, not an outage', async () => {
    const r = runtime({ fresh: ALL.fresh, soon: ALL.soon, undated: ALL.undated, robot: ALL.robot });
    try {
      const report = await profilesHealth(r);
      assert.equal(report.ok, true);
      assert.deepEqual(report.credentials.map((c) => [c.profile, c.state]), [['fresh', 'ok'], ['soon', 'expiring'], ['undated', 'unknown']]);
    } finally {
      await r.close();
    }
  });

  it('warns in the log from CREDENTIAL_EXPIRY_WARNING_DAYS before (once a day per profile), an expired one as an error, and never with a value', async () => {
    const logs: string[] = [];
    const r = runtime({ fresh: ALL.fresh, soon: ALL.soon, expired: ALL.expired, vaultCert: ALL.vaultCert }, { CREDENTIAL_EXPIRY_WARNING_DAYS: '7' }, logs);
    try {
      const report = await profilesHealth(r);
      await profilesHealth(r);
      assert.deepEqual(report.credentials.map((c) => [c.profile, c.state]), [['fresh', 'ok'], ['soon', 'ok'], ['expired', 'expired'], ['vaultCert', 'expiring']]);
      const events = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.operation === 'credentialExpiry');
      assert.deepEqual(events.map((e) => [e.profile, e.state, e.daysLeft, e.secret]), [['expired', 'expired', -2, 'expired-secret'], ['vaultCert', 'expiring', 5, 'vault-cert-pem']]);
      assert.equal(events[0]!.outcome, 'error');
      for (const value of values) assert.ok(logs.every((l) => !l.includes(value)));
    } finally {
      await r.close();
    }
  });

  it('CREDENTIAL_EXPIRY_WARNING_DAYS must be a whole number of at least 0', () => {
    for (const bad of ['-1', 'ten', '2.5']) {
      try {
        runtime({ fresh: ALL.fresh }, { CREDENTIAL_EXPIRY_WARNING_DAYS: bad });
        assert.fail(`accepted ${bad}`);
      } catch (error) {
        assert.ok(isMailError(error));
        assert.deepEqual([error.code, error.field], ['ECONFIG', 'CREDENTIAL_EXPIRY_WARNING_DAYS']);
      }
    }
  });

  it('a send checks the expiry of the secret it got its token with: the warning is logged and the metric accessor has the days left, without another vault read', async () => {
    const logs: string[] = [];
    const r = runtime({ soon: ALL.soon }, {}, logs);
    try {
      const readsBefore = vault.secretReads('soon-secret').filter((q) => q.status === 200).length;
      await sendMail(r, { profile: 'soon', to: 'ann@example.com', subject: 'still working', text: 'for 10 more days' });
      const deadline = Date.now() + 5000;
      while (r.credentialExpiry.snapshot().length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      assert.deepEqual(r.credentialExpiry.snapshot().map((c) => [c.profile, c.daysLeft, c.state]), [['soon', 10, 'expiring']]);
      assert.ok(logs.some((l) => /"operation":"credentialExpiry","profile":"soon","state":"expiring"/.test(l)), logs.join('\n'));
      assert.equal(vault.secretReads('soon-secret').filter((q) => q.status === 200).length - readsBefore, 1, 'the credential and the expiry came from one read');
    } finally {
      await r.close();
    }
  });

  it('m365-mail health prints the credentials with days left and exits 1 when one has expired', async () => {
    const healthy = await cli(['health'], { fresh: ALL.fresh, soon: ALL.soon });
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.deepEqual(table(JSON.parse(healthy.stdout) as ProfilesHealthReport), [['fresh', 'clientSecret', 'ok', 90, 'keyVault'], ['soon', 'clientSecret', 'expiring', 10, 'keyVault']]);
    const unhealthy = await cli(['health'], { fresh: ALL.fresh, expired: ALL.expired });
    assert.equal(unhealthy.code, 1, unhealthy.stderr);
    const report = JSON.parse(unhealthy.stdout) as ProfilesHealthReport;
    assert.deepEqual([report.ok, report.credentials[1]!.state, report.credentials[1]!.daysLeft], [false, 'expired', -2]);
    for (const value of values) assert.ok(!(healthy.stdout + healthy.stderr + unhealthy.stdout + unhealthy.stderr).includes(value));
  });

  it('m365-mail test shows the days left in the secret step and on its last line, with the renewal hint', async () => {
    const run = await cli(['test', '--profile', 'soon'], { soon: ALL.soon });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /✓ secret .*client secret expiry: \S+ \(10 days left, expiring; from the vault's expiration date\)/);
    assert.match(run.stdout, /hint: The client secret in "soon-secret" expires on \S+ \(10 days left\)/);
    assert.match(run.stdout.trimEnd().split('\n').at(-1)!, /^Credential: client secret "soon-secret" expires \S+: 10 days left \(expiring\)$/);
    const json = await cli(['test', '--profile', 'soon', '--json'], { soon: ALL.soon });
    const report = JSON.parse(json.stdout) as { credential: { daysLeft: number; state: string; source: string } };
    assert.deepEqual([report.credential.daysLeft, report.credential.state, report.credential.source], [10, 'expiring', 'keyVault']);
    for (const value of values) assert.ok(!(run.stdout + run.stderr + json.stdout + json.stderr).includes(value));
  });

  it('from the app settings: a certificate\'s notAfter is known, a client secret\'s date is not', async () => {
    const profiles = parseProfiles({ profiles: { cert: ALL.cert, fresh: ALL.fresh } }, 'test').profiles;
    const now = new Date();
    const cert = credentialExpiryOf(profiles.get('cert')!, { credential: 'certificate', secret: 'cert-pem' }, { value: pems.cert! }, { warningDays: 30, store: 'environment', now });
    assert.deepEqual([cert.state, cert.daysLeft, cert.source], ['expiring', 20, 'certificate']);
    const secret = credentialExpiryOf(profiles.get('fresh')!, { credential: 'clientSecret', secret: 'fresh-secret' }, { value: 'x' }, { warningDays: 30, store: 'environment', now });
    assert.deepEqual([secret.state, secret.daysLeft], ['unknown', null]);
    assert.match(secret.hint!, /The app settings keep no expiry date: keep "fresh-secret" in Key Vault/);
    // The last day is 0 days left (with CREDENTIAL_EXPIRY_WARNING_DAYS 0 not even expiring); the moment it passes, expired.
    const lastDay = (warningDays: number) => credentialExpiryOf(profiles.get('fresh')!, { credential: 'clientSecret', secret: 'fresh-secret' }, { value: 'x', expiresOn: new Date(now.getTime() + 3600_000) }, { warningDays, store: 'keyVault', now });
    assert.deepEqual([lastDay(1).state, lastDay(1).daysLeft, lastDay(0).state], ['expiring', 0, 'ok']);
    const gone = credentialExpiryOf(profiles.get('fresh')!, { credential: 'clientSecret', secret: 'fresh-secret' }, { value: 'x', expiresOn: now }, { warningDays: 0, store: 'keyVault', now });
    assert.deepEqual([gone.state, gone.daysLeft], ['expired', 0]);
  });
});
