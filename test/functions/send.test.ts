import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import { simpleParser, type AddressObject } from 'mailparser';
import { send } from '../../functions/send.js';
import { createLogger, type Logger } from '../../shared/log.js';
import { registerSensitive } from '../../shared/redact.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import type { Profile } from '../../shared/config/profiles.js';
import type { MailSender } from '../../shared/transports/types.js';

function post(body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }): HttpRequest {
  return new HttpRequest({
    method: 'POST',
    url: 'http://localhost/api/send',
    body: { string: typeof body === 'string' ? body : JSON.stringify(body) },
    headers,
  });
}

function invocation(id: string, logs: string[] = []): InvocationContext {
  return new InvocationContext({ invocationId: id, functionName: 'send', logHandler: (_level, ...args) => logs.push(args.map(String).join(' ')) });
}

function header(response: HttpResponseInit, name: string): string | undefined {
  const headers = response.headers as Record<string, string> | undefined;
  const key = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : headers![key];
}

function json(response: HttpResponseInit): Record<string, unknown> {
  assert.equal(typeof response.body, 'string');
  return JSON.parse(response.body as string) as Record<string, unknown>;
}

function addresses(value: AddressObject | AddressObject[] | undefined): string[] {
  const list = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return list.flatMap((a) => a.value.map((v) => v.address ?? ''));
}

function capturingLogger(lines: string[]): Logger {
  const sink = (...args: unknown[]) => lines.push(args.map(String).join(' '));
  return createLogger({ log: sink, warn: sink, error: sink });
}

describe('POST /api/send on the built-in local profile (file transport)', () => {
  let dir: string;
  let outbox: string;
  const runtimeLogs: string[] = [];

  const eml = () => (existsSync(outbox) ? readdirSync(outbox).filter((f) => f.endsWith('.eml')) : []);

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-send-fn-'));
    outbox = path.join(dir, 'outbox');
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir, SEND_MAX_BYTES: '65536', SEND_MAX_RECIPIENTS: '10' }, logger: capturingLogger(runtimeLogs) }));
  });
  beforeEach(() => rmSync(outbox, { recursive: true, force: true }));
  after(() => {
    setRuntime(undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 200 {id, status: "sent", messageId} and writes one .eml that parses back to the message sent', async () => {
    const pdf = Buffer.from('%PDF-1.4 a small attachment');
    const response = await send(
      post({
        to: ['Ada Lovelace <ada@example.com>', { name: 'Grace', address: 'grace@example.org' }],
        cc: 'carol@example.net',
        bcc: ['dave@example.com'],
        replyTo: 'help@localhost.localdomain',
        subject: 'Ticket 42: printer on fire',
        text: 'Plain body',
        html: '<p>HTML <b>body</b></p>',
        importance: 'high',
        headers: { 'X-Ticket': '42' },
        attachments: [{ filename: 'report.pdf', contentType: 'application/pdf', content: pdf.toString('base64') }],
      }),
      invocation('inv-ok'),
    );
    assert.equal(response.status, 200);
    assert.equal(header(response, 'content-type'), 'application/json');
    const body = json(response);
    assert.equal(body.id, 'inv-ok');
    assert.equal(body.status, 'sent');
    assert.match(String(body.messageId), /^<[^<>@\s]+@localhost\.localdomain>$/);

    const files = eml();
    assert.equal(files.length, 1);
    const parsed = await simpleParser(readFileSync(path.join(outbox, files[0]!)));
    assert.equal(parsed.messageId, body.messageId);
    assert.deepEqual(addresses(parsed.from), ['local@localhost.localdomain']);
    assert.deepEqual(addresses(parsed.to), ['ada@example.com', 'grace@example.org']);
    assert.deepEqual(addresses(parsed.cc), ['carol@example.net']);
    assert.deepEqual(addresses(parsed.bcc), ['dave@example.com']);
    assert.deepEqual(addresses(parsed.replyTo), ['help@localhost.localdomain']);
    assert.equal(parsed.subject, 'Ticket 42: printer on fire');
    assert.equal(parsed.text?.trim(), 'Plain body');
    assert.equal(parsed.html, '<p>HTML <b>body</b></p>');
    assert.equal(parsed.headers.get('x-ticket'), '42');
    assert.equal(parsed.headers.get('priority'), 'high', 'mailparser folds Importance and X-Priority into "priority"');
    assert.equal(parsed.attachments.length, 1);
    assert.equal(parsed.attachments[0]!.filename, 'report.pdf');
    assert.equal(parsed.attachments[0]!.contentType, 'application/pdf');
    assert.deepEqual(parsed.attachments[0]!.content, pdf);
  });

  const valid = { to: 'someone@example.com', subject: 'hi', text: 'hello' };
  const badInputs: { name: string; body: unknown; headers?: Record<string, string>; status: number; code: string; field: string }[] = [
    { name: 'a body that is not JSON', body: 'to=someone@example.com', status: 400, code: 'EINPUT', field: 'body' },
    { name: 'a JSON array instead of an object', body: [valid], status: 400, code: 'EINPUT', field: 'body' },
    { name: 'a form content type', body: valid, headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 400, code: 'EINPUT', field: 'content-type' },
    { name: 'a text/plain content type', body: valid, headers: { 'content-type': 'text/plain' }, status: 400, code: 'EINPUT', field: 'content-type' },
    { name: 'an unknown profile', body: { ...valid, profile: 'nobody' }, status: 400, code: 'EPROFILE_UNKNOWN', field: 'profile' },
    { name: 'an unknown field', body: { ...valid, priority: 'high' }, status: 400, code: 'EINPUT', field: 'priority' },
    { name: 'an invalid address', body: { ...valid, to: 'not-an-address' }, status: 400, code: 'EINPUT', field: 'to' },
    { name: 'an invalid second address in a list', body: { ...valid, cc: ['a@example.com', 'b@@example'] }, status: 400, code: 'EINPUT', field: 'cc.1' },
    { name: 'CR/LF in the subject', body: { ...valid, subject: 'hi\r\nBcc: victim@example.com' }, status: 400, code: 'EINPUT', field: 'subject' },
    { name: 'CR/LF in a header value', body: { ...valid, headers: { 'X-Ticket': '1\nBcc: victim@example.com' } }, status: 400, code: 'EINPUT', field: 'headers.X-Ticket' },
    { name: 'a header that is not X-', body: { ...valid, headers: { 'Reply-To': 'x@example.com' } }, status: 400, code: 'EINPUT', field: 'headers.Reply-To' },
    { name: 'attachment content that is not base64', body: { ...valid, attachments: [{ filename: 'a.txt', content: 'not*base64!' }] }, status: 400, code: 'EINPUT', field: 'attachments.0.content' },
    { name: 'an attachment filename that is a relative path', body: { ...valid, attachments: [{ filename: '../../etc/cron.d/job', content: 'aGk=' }] }, status: 400, code: 'EINPUT', field: 'attachments.0.filename' },
    { name: 'an attachment filename that is a Windows path', body: { ...valid, attachments: [{ filename: 'C:\\Users\\Public\\run.bat', content: 'aGk=' }] }, status: 400, code: 'EINPUT', field: 'attachments.0.filename' },
    { name: 'an attachment filename whose right-to-left override disguises its extension', body: { ...valid, attachments: [{ filename: 'invoice\u202Efdp.exe', content: 'aGk=' }] }, status: 400, code: 'EINPUT', field: 'attachments.0.filename' },
    { name: 'a NUL in an attachment filename', body: { ...valid, attachments: [{ filename: 'invoice.pdf\u0000.exe', content: 'aGk=' }] }, status: 400, code: 'EINPUT', field: 'attachments.0.filename' },
    { name: 'a contentId with a control character', body: { ...valid, attachments: [{ filename: 'logo.png', content: 'aGk=', contentId: 'logo\u0000@x' }] }, status: 400, code: 'EINPUT', field: 'attachments.0.contentId' },
    { name: 'an unknown importance', body: { ...valid, importance: 'urgent' }, status: 400, code: 'EINPUT', field: 'importance' },
    { name: 'a from address the profile may not use', body: { ...valid, from: 'ceo@contoso.com' }, status: 403, code: 'EFROM_NOT_ALLOWED', field: 'from' },
    { name: 'no recipients', body: { subject: 'hi', text: 'hello' }, status: 422, code: 'ENO_RECIPIENTS', field: 'to' },
    { name: 'no text, html or attachment', body: { to: 'someone@example.com', subject: 'hi' }, status: 422, code: 'ENOTHING_TO_SEND', field: 'text' },
    { name: 'more recipients than SEND_MAX_RECIPIENTS', body: { ...valid, to: Array.from({ length: 11 }, (_, i) => `r${i}@example.com`) }, status: 422, code: 'ETOO_MANY_RECIPIENTS', field: 'to' },
    { name: 'an html body over SEND_MAX_BYTES', body: { to: 'someone@example.com', html: `<p>${'x'.repeat(70_000)}</p>` }, status: 413, code: 'ETOO_LARGE', field: 'html' },
    { name: 'an attachment over SEND_MAX_BYTES', body: { ...valid, attachments: [{ filename: 'big.bin', content: Buffer.alloc(60_000).toString('base64') }] }, status: 413, code: 'ETOO_LARGE', field: 'attachments' },
    // Found by the fuzz suite (test/fuzz): each was accepted, or named the wrong field or none.
    { name: 'a control character in an address string, which the address parser would drop', body: { ...valid, to: 'ada@exam\u0001ple.com' }, status: 400, code: 'EINPUT', field: 'to' },
    { name: 'a no-break space in an address string, which the address parser would split on', body: { ...valid, cc: ['ada@example.co\u00a0m'] }, status: 400, code: 'EINPUT', field: 'cc.0' },
    { name: 'a form feed before the Idempotency-Key, which trimming would drop', body: valid, headers: { 'content-type': 'application/json', 'idempotency-key': '\fkey-42' }, status: 400, code: 'EINPUT', field: 'idempotency-key' },
    { name: 'a text body over SEND_MAX_BYTES beside a small attachment, naming the text', body: { ...valid, text: 'x'.repeat(70_000), attachments: [{ filename: 'a.txt', content: 'aGk=' }] }, status: 413, code: 'ETOO_LARGE', field: 'text' },
    { name: 'a field with an empty name', body: { ...valid, '': 1 }, status: 400, code: 'EINPUT', field: '""' },
    // 2 x SEND_MAX_BYTES + 1 MiB is the most worth reading: what is larger is refused before it is parsed.
    { name: 'a body over the request limit, before parsing it', body: `{"to": "${'x'.repeat(1_200_000)}`, status: 413, code: 'ETOO_LARGE', field: 'body' },
    { name: 'a Content-Length over the request limit, unread', body: valid, headers: { 'content-type': 'application/json', 'content-length': '1200000' }, status: 413, code: 'ETOO_LARGE', field: 'body' },
  ];

  for (const c of badInputs) {
    it(`refuses ${c.name} with ${c.status} ${c.code} on "${c.field}", and writes nothing`, async () => {
      const response = await send(post(c.body, c.headers), invocation(`inv-${c.code}`));
      assert.equal(response.status, c.status);
      assert.equal(header(response, 'content-type'), 'application/problem+json');
      const problem = json(response);
      assert.equal(problem.status, c.status);
      assert.equal(problem.code, c.code);
      assert.equal(problem.field, c.field);
      assert.equal(problem.type, `urn:m365-mail:error:${c.code}`);
      assert.equal(typeof problem.title, 'string');
      assert.ok(typeof problem.hint === 'string' && problem.hint.length > 10, 'a hint a person can act on');
      assert.deepEqual(eml(), []);
    });
  }
});

describe('POST /api/send when something unexpected breaks', () => {
  let dir: string;
  afterEach(() => setRuntime(undefined));
  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-send-fail-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('answers problem+json 5xx without paths, error names or stack, and logs the cause for the operator', async () => {
    // The outbox cannot be created: MAIL_DIR is a regular file.
    const blocker = path.join(dir, 'not-a-directory');
    writeFileSync(blocker, '');
    setRuntime(new MailRuntime({ env: { MAIL_DIR: blocker }, logger: capturingLogger([]) }));
    const logs: string[] = [];
    const response = await send(post({ to: 'someone@example.com', subject: 'hi', text: 'hello' }), invocation('inv-broken', logs));
    assert.ok(response.status! >= 500 && response.status! < 600, `status ${response.status}`);
    assert.equal(header(response, 'content-type'), 'application/problem+json');
    const raw = response.body as string;
    const problem = JSON.parse(raw) as Record<string, unknown>;
    assert.equal(typeof problem.code, 'string');
    assert.equal(typeof problem.hint, 'string');
    assert.ok(!raw.includes(dir), 'the response names a server path');
    assert.doesNotMatch(raw, /ENOTDIR|EEXIST|    at /);
    assert.ok(logs.some((l) => l.includes('inv-broken') && /ENOTDIR|EEXIST/.test(l)), 'the cause is logged with the invocation id');
  });

  it('keeps a secret carried by an unexpected error out of the response and the logs', async () => {
    const secret = 'S3cr3t-client-value-123';
    registerSensitive(secret);
    class BrokenRuntime extends MailRuntime {
      override sender(_profile: Profile): MailSender {
        return {
          via: 'file',
          send: async () => {
            throw new TypeError(`cannot read properties of undefined (client_secret ${secret})`);
          },
        };
      }
    }
    const runtimeLogs: string[] = [];
    setRuntime(new BrokenRuntime({ env: { MAIL_DIR: dir }, logger: capturingLogger(runtimeLogs) }));
    const logs: string[] = [];
    const response = await send(post({ to: 'someone@example.com', subject: 'hi', text: 'hello' }), invocation('inv-secret', logs));
    assert.ok(response.status! >= 500);
    assert.ok(!(response.body as string).includes(secret));
    assert.ok(logs.length > 0 && runtimeLogs.length > 0, 'both the function and the core logged the failure');
    for (const line of [...logs, ...runtimeLogs]) assert.ok(!line.includes(secret), `secret in log line: ${line}`);
    assert.ok(runtimeLogs.some((l) => l.includes('"code":"EINTERNAL"')), 'the send is logged as an internal failure, not as the provider\'s');
  });
});
