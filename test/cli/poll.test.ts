import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { AzuritePeer } from '../peers/azurite.js';
import { runNode, type NodeRun } from '../support/runNode.js';

const CLI = path.join(APP_ROOT, 'dist', 'cli', 'm365-mail.js');

function message(n: number): string {
  return [
    'From: Ann <ann@example.com>',
    'To: local@localhost.localdomain',
    `Subject: ticket ${n}`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    `Message-ID: <cli-${n}@example.com>`,
    '',
    `body ${n}`,
    '',
  ].join('\r\n');
}

describe('m365-mail poll on the built-in local profile', () => {
  const azurite = new AzuritePeer();
  let dir: string;

  before(async () => {
    await azurite.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-cli-poll-'));
    mkdirSync(path.join(dir, 'inbox'), { recursive: true });
  });
  after(async () => {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function cli(args: string[]): Promise<NodeRun> {
    const env: NodeJS.ProcessEnv = { ...process.env, MAIL_DIR: dir, AzureWebJobsStorage: azurite.connectionString };
    for (const key of ['MAIL_PROFILES', 'MAIL_PROFILES_FILE', 'DEFAULT_PROFILE', 'KEY_VAULT_URL']) delete env[key];
    return runNode([CLI, ...args], { cwd: APP_ROOT, env });
  }

  it('delivers the .eml files in the inbox to the mail-incoming queue once, and moves them to processed', async () => {
    writeFileSync(path.join(dir, 'inbox', 'a.eml'), message(1));
    writeFileSync(path.join(dir, 'inbox', 'b.eml'), message(2));

    const first = await cli(['poll']);
    assert.equal(first.code, 0, first.stderr);
    const result = JSON.parse(first.stdout) as { profile: string; status: string; delivered: number };
    assert.deepEqual([result.profile, result.status, result.delivered], ['local', 'completed', 2]);
    assert.deepEqual(readdirSync(path.join(dir, 'processed')).sort(), ['a.eml', 'b.eml']);

    const queue = new QueueClient(azurite.connectionString, 'mail-incoming');
    const received = await queue.receiveMessages({ numberOfMessages: 32 });
    const subjects = received.receivedMessageItems.map((m) => (JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as { subject: string }).subject);
    assert.deepEqual(subjects.sort(), ['ticket 1', 'ticket 2']);

    const second = await cli(['poll', '--all']);
    assert.equal(second.code, 0, second.stderr);
    const results = JSON.parse(second.stdout) as Array<{ delivered: number }>;
    assert.deepEqual(results.map((r) => r.delivered), [0]);
  });

  it('answers bad arguments and unknown profiles with exit code 2 and a problem naming the field', async () => {
    const both = await cli(['poll', '--all', '--profile', 'local']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /"field":"arguments"/);
    const unknown = await cli(['poll', '--profile', 'nope']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /"code":"EPROFILE_UNKNOWN"/);
  });
});
