import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { simpleParser, type AddressObject } from 'mailparser';
import { send } from '../../functions/send.js';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { runNode, type NodeRun } from '../support/runNode.js';

const CLI = path.join(APP_ROOT, 'dist', 'cli', 'm365-mail.js');

/** Runs the compiled CLI as a user would, with only the settings given (no inherited profiles). */
function cli(args: string[], options: { env?: Record<string, string>; stdin?: string } = {}): Promise<NodeRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const key of ['MAIL_PROFILES', 'MAIL_PROFILES_FILE', 'DEFAULT_PROFILE', 'KEY_VAULT_URL']) if (!options.env?.[key]) delete env[key];
  return runNode([CLI, ...args], { cwd: APP_ROOT, env, stdin: options.stdin });
}

/** The problem JSON is the last line on stderr (structured log lines may come before it). */
function problemOf(run: NodeRun): Record<string, unknown> {
  const last = run.stderr.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as Record<string, unknown>;
}

function addresses(value: AddressObject | AddressObject[] | undefined): string[] {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return list.flatMap((a) => a.value.map((v) => v.address ?? ''));
}

describe('m365-mail send on the built-in local profile', () => {
  let dir: string;
  let outbox: string;
  const env = () => ({ MAIL_DIR: dir });
  const eml = () => (existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : []);

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-cli-'));
    outbox = path.join(dir, 'outbox');
  });
  beforeEach(() => rmSync(outbox, { recursive: true, force: true }));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('sends from options, prints the JSON result and exits 0; the .eml carries every field and the attached file', async () => {
    const attachment = path.join(dir, 'invoice.pdf');
    writeFileSync(attachment, '%PDF-1.4 invoice');
    const run = await cli(
      ['send', '--to', 'Ada <ada@example.com>', '--to', 'grace@example.org', '--cc', 'carol@example.net', '--bcc', 'dave@example.com',
        '--subject', 'Invoice 7', '--text', 'see attached', '--html', '<p>see attached</p>', '--attach', attachment],
      { env: env() },
    );
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout) as Record<string, unknown>;
    assert.equal(result.status, 'sent');
    assert.equal(result.profile, 'local');
    assert.equal(result.via, 'file');
    assert.equal(typeof result.id, 'string');
    const files = eml();
    assert.equal(files.length, 1);
    const parsed = await simpleParser(readFileSync(path.join(outbox, files[0]!)));
    assert.equal(parsed.messageId, result.messageId);
    assert.deepEqual(addresses(parsed.to), ['ada@example.com', 'grace@example.org']);
    assert.deepEqual(addresses(parsed.cc), ['carol@example.net']);
    assert.deepEqual(addresses(parsed.bcc), ['dave@example.com']);
    assert.equal(parsed.subject, 'Invoice 7');
    assert.equal(parsed.text?.trim(), 'see attached');
    assert.equal(parsed.html, '<p>see attached</p>');
    assert.equal(parsed.attachments[0]?.filename, 'invoice.pdf');
    assert.equal(parsed.attachments[0]?.contentType, 'application/pdf');
    assert.equal(parsed.attachments[0]?.content.toString(), '%PDF-1.4 invoice');
  });

  it('sends the JSON body of POST /api/send from a file and from stdin', async () => {
    const file = path.join(dir, 'message.json');
    writeFileSync(file, JSON.stringify({ to: 'someone@example.com', subject: 'from a file', text: 'hello' }));
    const fromFile = await cli(['send', '--json', file], { env: env() });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    const fromStdin = await cli(['send', '--json', '-'], { env: env(), stdin: JSON.stringify({ to: 'someone@example.com', subject: 'from stdin', text: 'hello' }) });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    const subjects = await Promise.all(eml().map(async (f) => (await simpleParser(readFileSync(path.join(outbox, f)))).subject));
    assert.deepEqual(subjects.sort(), ['from a file', 'from stdin']);
  });

  it('exits 2 on bad input with the same problem JSON as the HTTP API, and writes nothing', async () => {
    const body = { to: 'someone@example.com', subject: 'hi\r\nBcc: victim@example.com', text: 'hello' };
    const run = await cli(['send', '--json', '-'], { env: env(), stdin: JSON.stringify(body) });
    assert.equal(run.code, 2);
    assert.equal(run.stdout, '');

    setRuntime(new MailRuntime({ env: env() }));
    const http = await send(
      new HttpRequest({ method: 'POST', url: 'http://localhost/api/send', body: { string: JSON.stringify(body) }, headers: { 'content-type': 'application/json' } }),
      new InvocationContext({ invocationId: 'cli-compare', functionName: 'send', logHandler: () => {} }),
    );
    setRuntime(undefined);
    assert.deepEqual(problemOf(run), JSON.parse(http.body as string));
    assert.equal(problemOf(run).field, 'subject');
    assert.deepEqual(eml(), []);
  });

  const badArguments: { name: string; args: (dir: string) => string[]; code: string; field: string }[] = [
    { name: 'an invalid address', args: () => ['send', '--to', 'not-an-address', '--text', 'x'], code: 'EINPUT', field: 'to.0' },
    { name: 'an unknown option', args: () => ['send', '--to', 'a@example.com', '--colour', 'red'], code: 'EINPUT', field: 'arguments' },
    { name: 'an option without its value', args: () => ['send', '--to'], code: 'EINPUT', field: 'arguments' },
    { name: 'an attachment that does not exist', args: (d) => ['send', '--to', 'a@example.com', '--text', 'x', '--attach', path.join(d, 'missing.pdf')], code: 'EINPUT', field: '--attach' },
    { name: '--json together with --to', args: () => ['send', '--json', '-', '--to', 'a@example.com'], code: 'EINPUT', field: '--to' },
    { name: 'a --json document that is not JSON', args: () => ['send', '--json', '-'], code: 'EINPUT', field: 'body' },
    { name: 'a profile that does not exist', args: () => ['send', '--profile', 'nobody', '--to', 'a@example.com', '--text', 'x'], code: 'EPROFILE_UNKNOWN', field: 'profile' },
    { name: 'no recipients', args: () => ['send', '--subject', 'hi', '--text', 'x'], code: 'ENO_RECIPIENTS', field: 'to' },
  ];

  for (const c of badArguments) {
    it(`exits 2 for ${c.name} (${c.code} on "${c.field}")`, async () => {
      const run = await cli(c.args(dir), { env: env(), stdin: 'not json' });
      assert.equal(run.code, 2, run.stderr);
      const problem = problemOf(run);
      assert.equal(problem.code, c.code);
      assert.equal(problem.field, c.field);
      assert.equal(typeof problem.hint, 'string');
      assert.deepEqual(eml(), []);
    });
  }

  it('exits 1 with a 5xx problem when the message cannot be written', async () => {
    const blocker = path.join(dir, 'a-file');
    writeFileSync(blocker, '');
    const run = await cli(['send', '--to', 'a@example.com', '--text', 'x'], { env: { MAIL_DIR: blocker } });
    assert.equal(run.code, 1);
    const problem = problemOf(run);
    assert.ok(Number(problem.status) >= 500);
    assert.ok(!JSON.stringify(problem).includes(blocker), 'the problem names a server path');
  });
});

describe('m365-mail profiles, help and unknown commands', () => {
  it('lists profiles as JSON without secrets or secret names', async () => {
    const profiles = JSON.stringify({ profiles: { support: {
      mailbox: 'support@contoso.com', tenantId: 'contoso-tenant', clientId: 'app-1',
      auth: { type: 'clientSecret', secret: 'support-client-secret' }, send: { via: 'graph' },
    } } });
    const run = await cli(['profiles'], { env: { MAIL_PROFILES: profiles, SUPPORT_CLIENT_SECRET: 'VerySecretValue123' } });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), {
      source: 'MAIL_PROFILES',
      profiles: [{ name: 'support', mailbox: 'support@contoso.com', auth: 'clientSecret', cloud: 'public', send: { via: 'graph', allowedFrom: ['support@contoso.com'] } }],
    });
    assert.doesNotMatch(run.stdout + run.stderr, /support-client-secret|VerySecretValue123/);
  });

  it('exits 1 with ECONFIG naming profile and field when the profiles document is invalid', async () => {
    const run = await cli(['profiles'], { env: { MAIL_PROFILES: JSON.stringify({ profiles: { x: { mailbox: 'x@example.com', auth: { type: 'magic' }, send: { via: 'file' } } } }) } });
    assert.equal(run.code, 1);
    const problem = problemOf(run);
    assert.equal(problem.code, 'ECONFIG');
    assert.equal(problem.profile, 'x');
    assert.match(String(problem.field), /^auth/);
  });

  it('prints help listing the commands with exit 0, and refuses an unknown command with exit 2', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^\s+send\s/m);
    assert.match(help.stdout, /^\s+profiles\s/m);
    const sendHelp = await cli(['send', '--help']);
    assert.equal(sendHelp.code, 0);
    assert.match(sendHelp.stdout, /--attach FILE/);
    const unknown = await cli(['frobnicate']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "frobnicate"/);
    const none = await cli([]);
    assert.equal(none.code, 2);
  });
});
