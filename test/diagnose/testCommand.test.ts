import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { runNode, type NodeRun } from '../support/runNode.js';

const CLI = path.join(APP_ROOT, 'dist', 'cli', 'm365-mail.js');
const SECRET = 'cli-diagnosis-secret-value';

describe('m365-mail test', () => {
  const entra = new TokenEndpointPeer();
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: ['support@contoso.com'] });
  let dir: string;

  before(async () => {
    await entra.start();
    await smtp.start();
    entra.register({ tenantId: 'contoso-tenant', clientId: 'cli-app', secret: SECRET });
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-cli-test-'));
  });
  after(async () => {
    await smtp.stop();
    await entra.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const smtpProfiles = () =>
    JSON.stringify({
      profiles: {
        support: {
          mailbox: 'support@contoso.com',
          tenantId: 'contoso-tenant',
          clientId: 'cli-app',
          auth: { type: 'clientSecret', secret: 'support-client-secret' },
          send: { via: 'smtp' },
          endpoints: { authority: entra.url, smtp: smtp.endpoint },
        },
      },
    });

  /** The compiled CLI with only the settings given (no profiles inherited from this process). */
  function cli(args: string[], settings: Record<string, string>): Promise<NodeRun> {
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const key of ['MAIL_PROFILES', 'MAIL_PROFILES_FILE', 'DEFAULT_PROFILE', 'KEY_VAULT_URL']) delete env[key];
    return runNode([CLI, 'test', ...args], { cwd: APP_ROOT, env: { ...env, MAIL_DIR: dir, ...settings } });
  }

  it('prints each passed step with ✓ and exits 0 for a healthy SMTP profile', async () => {
    const run = await cli(['--profile', 'support'], { MAIL_PROFILES: smtpProfiles(), SUPPORT_CLIENT_SECRET: SECRET });
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const lines = run.stdout.trimEnd().split('\n');
    assert.equal(lines[0], 'Profile support: all steps passed');
    assert.deepEqual(lines.slice(1, -1).map((l) => /^ {2}([✓✗]) (\S+)/.exec(l)?.slice(1).join(' ')), ['✓ config', '✓ secret', '✓ token', '✓ send-connect']);
    // The app settings keep no expiry date; test/identity/credentialExpiry.test.ts has a vault's.
    assert.equal(lines.at(-1), 'Credential: client secret "support-client-secret": no expiry date known (unknown)');
    assert.match(run.stdout, /accepted STARTTLS and the XOAUTH2 login as support@contoso\.com; nothing was sent/);
    assert.equal(smtp.authAttempts.at(-1)?.accepted, true);
  });

  it('prints the failed step with ✗, its code and hint, and exits 1; no secret or token in the output', async () => {
    const run = await cli(['--profile', 'support'], { MAIL_PROFILES: smtpProfiles(), SUPPORT_CLIENT_SECRET: 'a-wrong-secret-value' });
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stdout, /^Profile support: failed at token$/m);
    assert.match(run.stdout, /^ {2}✗ token +\d+ ms {2}profile "support": token request failed: .*AADSTS7000215/m);
    assert.match(run.stdout, /^ +code ETOKEN \(AADSTS7000215\)$/m);
    assert.match(run.stdout, /^ +hint: The client secret is wrong or expired/m);
    assert.doesNotMatch(run.stdout, /send-connect/);
    for (const value of ['a-wrong-secret-value', SECRET, ...entra.issued.keys()]) assert.ok(!(run.stdout + run.stderr).includes(value));
  });

  it('--json prints the report as the HTTP API answers it', async () => {
    const run = await cli(['--json'], {});
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as { profile: string; ok: boolean; steps: Array<{ step: string; ok: boolean }> };
    assert.equal(report.profile, 'local');
    assert.equal(report.ok, true);
    assert.deepEqual(report.steps.map((s) => s.step), ['config', 'receive-connect']);
  });

  it('exits 1 with the failed config step for an invalid profiles document', async () => {
    const run = await cli([], { MAIL_PROFILES: JSON.stringify({ profiles: { support: { mailbox: 'nope' } } }) });
    assert.equal(run.code, 1);
    assert.match(run.stdout, /^ {2}✗ config/m);
    assert.match(run.stdout, /^ +code ECONFIG$/m);
  });

  const badInput: Array<{ name: string; args: string[]; code: string; field: string }> = [
    { name: 'an unknown profile', args: ['--profile', 'nobody'], code: 'EPROFILE_UNKNOWN', field: 'profile' },
    { name: 'a --send-to that is not an address', args: ['--send-to', 'nobody'], code: 'EINPUT', field: 'sendTo' },
    { name: 'an unknown option', args: ['--verbose'], code: 'EINPUT', field: 'arguments' },
  ];
  for (const bad of badInput) {
    it(`exits 2 with problem JSON on stderr for ${bad.name}`, async () => {
      const run = await cli(bad.args, {});
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.equal(run.stdout, '');
      const problem = JSON.parse(run.stderr.trim().split('\n').at(-1) ?? '') as Record<string, unknown>;
      assert.equal(problem.code, bad.code);
      assert.equal(problem.field, bad.field);
    });
  }
});
