import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { prepareMessage, sendMail } from '../../shared/send/sendMail.js';
import { mailErrorFrom, mailErrorOf } from '../support/mailError.js';

const mailDir = mkdtempSync(path.join(os.tmpdir(), 'prepare-message-'));
after(() => rmSync(mailDir, { recursive: true, force: true }));

/** No configuration: the built-in local profile (file transport, allowedFrom *@localhost.localdomain). */
const local = new MailRuntime({ env: { MAIL_DIR: mailDir }, logger: silentLogger });

/** A configured profile with small limits and an explicit allowedFrom list. */
const configured = new MailRuntime({
  env: {
    MAIL_PROFILES: JSON.stringify({ profiles: {
      notices: {
        mailbox: 'notices@contoso.com',
        tenantId: 'contoso.onmicrosoft.com',
        clientId: '00000000-0000-0000-0000-000000000002',
        auth: { type: 'clientSecret', secret: 'notices-secret' },
        send: { via: 'graph', allowedFrom: ['notices@contoso.com', '*@alerts.contoso.com'], maxBytes: 1000, maxRecipients: 3 },
      },
      reader: {
        mailbox: 'reader@contoso.com',
        auth: { type: 'managedIdentity' },
        receive: { via: 'graph', deliver: { queue: { name: 'mail-in' } } },
      },
    } }),
  },
  logger: silentLogger,
});

const minimal = { to: 'someone@example.com', subject: 'Hello', text: 'Hi' };

function rejected(runtime: MailRuntime, body: unknown) {
  return mailErrorOf(() => prepareMessage(runtime, body));
}

describe('a send request is validated completely before any transport sees it', () => {
  const cases: Array<[string, MailRuntime, unknown, string, number, string | undefined]> = [
    ['a body that is not an object', local, ['to', 'x@example.com'], 'EINPUT', 400, undefined],
    ['an unknown profile', configured, { ...minimal, profile: 'marketing' }, 'EPROFILE_UNKNOWN', 400, 'profile'],
    ['no profile when several are configured', configured, minimal, 'EINPUT', 400, 'profile'],
    ['a profile without a send section', configured, { ...minimal, profile: 'reader' }, 'EINPUT', 400, 'profile'],
    ['an unknown field', local, { ...minimal, attachment: [] }, 'EINPUT', 400, 'attachment'],
    ['an invalid to address', local, { ...minimal, to: 'someone at example.com' }, 'EINPUT', 400, 'to'],
    ['an invalid address inside a cc list', local, { ...minimal, cc: ['a@example.com', 'b@'] }, 'EINPUT', 400, 'cc.1'],
    ['two addresses in one string', local, { ...minimal, to: 'a@example.com, b@example.com' }, 'EINPUT', 400, 'to'],
    ['an address object with a bad address', local, { ...minimal, replyTo: { name: 'Desk', address: 'desk' } }, 'EINPUT', 400, 'replyTo.address'],
    ['CR/LF in the subject', local, { ...minimal, subject: 'Hello\r\nBcc: victim@example.com' }, 'EINPUT', 400, 'subject'],
    ['LF in a header value', local, { ...minimal, headers: { 'X-Ticket': '42\nBcc: victim@example.com' } }, 'EINPUT', 400, 'headers.X-Ticket'],
    ['CR/LF in an address name', local, { ...minimal, to: { name: 'Eve\r\nBcc: victim@example.com', address: 'eve@example.com' } }, 'EINPUT', 400, 'to.name'],
    ['CR/LF in an address string', local, { ...minimal, to: 'Eve\r\n <eve@example.com>' }, 'EINPUT', 400, 'to'],
    ['a header that is not an X- header', local, { ...minimal, headers: { 'Reply-To': 'boss@example.com' } }, 'EINPUT', 400, 'headers.Reply-To'],
    ['an importance that does not exist', local, { ...minimal, importance: 'urgent' }, 'EINPUT', 400, 'importance'],
    ['attachment content that is not base64', local, { ...minimal, attachments: [{ filename: 'a.txt', content: 'not*base64!' }] }, 'EINPUT', 400, 'attachments.0.content'],
    ['base64 with a wrong length', local, { ...minimal, attachments: [{ filename: 'a.txt', content: 'QUJDR' }] }, 'EINPUT', 400, 'attachments.0.content'],
    ['CR/LF in an attachment filename', local, { ...minimal, attachments: [{ filename: 'a\r\n.txt', content: 'QUJD' }] }, 'EINPUT', 400, 'attachments.0.filename'],
    ['a content type that is not a MIME type', local, { ...minimal, attachments: [{ filename: 'a.txt', contentType: 'text', content: 'QUJD' }] }, 'EINPUT', 400, 'attachments.0.contentType'],
    ['a contentId with angle brackets', local, { ...minimal, attachments: [{ filename: 'a.png', content: 'QUJD', contentId: '<logo>' }] }, 'EINPUT', 400, 'attachments.0.contentId'],
    ['no text, html or attachment', local, { to: 'someone@example.com', subject: 'Empty' }, 'ENOTHING_TO_SEND', 422, 'text'],
    ['no recipients at all', local, { subject: 'Hello', text: 'Hi', to: [] }, 'ENO_RECIPIENTS', 422, 'to'],
    ['more recipients than the profile allows', configured, { ...minimal, profile: 'notices', to: ['a@example.com', 'b@example.com'], cc: 'c@example.com', bcc: 'd@example.com' }, 'ETOO_MANY_RECIPIENTS', 422, 'to'],
    ['an html body over the size limit', configured, { ...minimal, profile: 'notices', text: undefined, html: 'x'.repeat(1001) }, 'ETOO_LARGE', 413, 'html'],
    ['an attachment that makes the message too large', configured, { ...minimal, profile: 'notices', attachments: [{ filename: 'a.bin', content: Buffer.alloc(800).toString('base64') }] }, 'ETOO_LARGE', 413, 'attachments'],
    ['a from address the profile may not use', configured, { ...minimal, profile: 'notices', from: 'ceo@contoso.com' }, 'EFROM_NOT_ALLOWED', 403, 'from'],
    ['a from outside the *@domain of the local profile', local, { ...minimal, from: 'someone@example.com' }, 'EFROM_NOT_ALLOWED', 403, 'from'],
    ['a from in a parent domain of an allowed *@domain', configured, { ...minimal, profile: 'notices', from: 'x@contoso.com' }, 'EFROM_NOT_ALLOWED', 403, 'from'],
    ['a from in a subdomain of an allowed *@domain', configured, { ...minimal, profile: 'notices', from: 'x@eu.alerts.contoso.com' }, 'EFROM_NOT_ALLOWED', 403, 'from'],
    ['an invalid from address', local, { ...minimal, from: 'me' }, 'EINPUT', 400, 'from'],
    ['a NUL in the subject', local, { ...minimal, subject: 'Hello\u0000world' }, 'EINPUT', 400, 'subject'],
    ['an escape character in a header value', local, { ...minimal, headers: { 'X-Ticket': '42\u001b[31m' } }, 'EINPUT', 400, 'headers.X-Ticket'],
    ['DEL in a display name', local, { ...minimal, to: { name: 'Eve\u007f', address: 'eve@example.com' } }, 'EINPUT', 400, 'to.name'],
    ['a header Exchange reserves (X-MS-Exchange-*)', local, { ...minimal, headers: { 'X-MS-Exchange-Organization-SCL': '-1' } }, 'EINPUT', 400, 'headers.X-MS-Exchange-Organization-SCL'],
    ['a header Exchange reserves (X-Forefront-*)', local, { ...minimal, headers: { 'X-Forefront-Antispam-Report': 'SFV:SKN' } }, 'EINPUT', 400, 'headers.X-Forefront-Antispam-Report'],
    ['a header Exchange reserves (X-Microsoft-Antispam*)', local, { ...minimal, headers: { 'x-microsoft-antispam-mailbox-delivery': 'ucf:0' } }, 'EINPUT', 400, 'headers.x-microsoft-antispam-mailbox-delivery'],
    ['a from display name that carries an address', local, { ...minimal, from: { name: 'CEO <ceo@contoso.com>', address: 'desk@localhost.localdomain' } }, 'EINPUT', 400, 'from.name'],
    ['a from display name with an @, in the string form', local, { ...minimal, from: '"ceo@contoso.com" <desk@localhost.localdomain>' }, 'EINPUT', 400, 'from'],
    ['a display name whose encoded-word decodes to an address', local, { ...minimal, to: { name: '=?utf-8?B?Q0VPIDxjZW9AY29udG9zby5jb20+?=', address: 'eve@example.com' } }, 'EINPUT', 400, 'to'],
    ['more addresses in one field than the limit, counted before any is parsed', configured, { ...minimal, profile: 'notices', to: undefined, bcc: Array.from({ length: 4 }, () => 'not even an address') }, 'ETOO_MANY_RECIPIENTS', 422, 'bcc'],
    ['more attachments than Exchange allows, counted before any is decoded', local, { ...minimal, attachments: Array.from({ length: 251 }, () => ({ filename: 'x', content: '!!' })) }, 'ETOO_MANY_ATTACHMENTS', 422, 'attachments'],
    ['more custom headers than the limit', local, { ...minimal, headers: Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`X-H${i}`, 'v'])) }, 'ETOO_MANY_HEADERS', 422, 'headers'],
  ];
  for (const [what, runtime, body, code, status, field] of cases) {
    it(`${what}: ${code} ${status}${field ? ` on ${field}` : ''}`, () => {
      const error = rejected(runtime, body);
      assert.equal(error.code, code, error.message);
      assert.equal(error.status, status);
      assert.equal(error.field, field);
      assert.ok(error.hint, 'every input error carries a hint');
    });
  }

  it('an invalid request never reaches the transport: nothing lands in the local outbox', async () => {
    const error = await mailErrorFrom(sendMail(local, { ...minimal, subject: 'a\r\nb' }));
    assert.equal(error.code, 'EINPUT');
    const outbox = path.join(mailDir, 'outbox');
    assert.deepEqual(existsSync(outbox) ? readdirSync(outbox) : [], []);
  });
});

describe('a valid send request is normalized', () => {
  it('from defaults to the profile mailbox; addresses in every accepted form are parsed', () => {
    const { profile, message } = prepareMessage(configured, {
      profile: 'notices',
      to: ['Ann Smith <ann@example.com>', { name: 'Bob', address: 'bob@example.com' }],
      cc: 'carol@example.com',
      replyTo: { address: 'desk@contoso.com' },
      subject: 'Quarterly',
      html: '<p>Hi</p>',
    });
    assert.equal(profile.name, 'notices');
    assert.deepEqual(message.from, { address: 'notices@contoso.com' });
    assert.deepEqual(message.to, [{ name: 'Ann Smith', address: 'ann@example.com' }, { name: 'Bob', address: 'bob@example.com' }]);
    assert.deepEqual(message.cc, [{ address: 'carol@example.com' }]);
    assert.deepEqual(message.bcc, []);
    assert.deepEqual(message.replyTo, [{ address: 'desk@contoso.com' }]);
    assert.equal(message.importance, 'normal');
    assert.match(message.messageId, /^<[0-9a-f-]{36}@contoso\.com>$/);
  });

  it('a from matching *@domain is allowed, case-insensitively', () => {
    const { message } = prepareMessage(configured, { ...minimal, profile: 'notices', from: 'Alerts <Pager@Alerts.Contoso.com>' });
    assert.deepEqual(message.from, { name: 'Alerts', address: 'Pager@Alerts.Contoso.com' });
  });

  it('the only configured profile or the built-in one serves when no profile is named', () => {
    const { profile, message } = prepareMessage(local, { ...minimal, from: 'robot@localhost.localdomain' });
    assert.equal(profile.name, 'local');
    assert.equal(message.from.address, 'robot@localhost.localdomain');
  });

  it('attachments are decoded from base64 (whitespace ignored) and keep their content id', () => {
    const { message } = prepareMessage(local, {
      ...minimal,
      attachments: [{ filename: 'logo.png', contentType: 'image/png', content: 'iVBO\nRw0K', contentId: 'logo@desk' }, { filename: 'a.bin', content: '' }],
    });
    assert.deepEqual(message.attachments[0], { filename: 'logo.png', contentType: 'image/png', content: Buffer.from('iVBORw0K', 'base64'), contentId: 'logo@desk' });
    assert.equal(message.attachments[1]?.contentType, 'application/octet-stream');
    assert.equal(message.attachments[1]?.content.length, 0);
  });

  it('a message exactly at the recipient limit passes', () => {
    const { message } = prepareMessage(configured, { ...minimal, profile: 'notices', to: ['a@example.com', 'b@example.com'], bcc: 'c@example.com' });
    assert.equal(message.to.length + message.bcc.length, 3);
  });
});

describe('what the header checks leave alone', () => {
  it('a TAB (folding whitespace) in the subject or a header value, and plain display names, go through', () => {
    const { message } = prepareMessage(local, { ...minimal, subject: 'Ticket\t42', headers: { 'X-Ticket': 'a\tb', 'X-MS-Custom': 'ok' }, to: { name: 'Support Desk (L1)', address: 'desk@example.com' }, cc: '"Müller, Zoë" <zoe@example.com>' });
    assert.equal(message.subject, 'Ticket\t42');
    assert.deepEqual(message.headers, { 'X-Ticket': 'a\tb', 'X-MS-Custom': 'ok' });
    assert.deepEqual([message.to[0]?.name, message.cc[0]?.name], ['Support Desk (L1)', 'Müller, Zoë']);
  });

  it('200,000 recipients are refused by count, naming the field', () => {
    const error = mailErrorOf(() => prepareMessage(local, { ...minimal, to: Array.from({ length: 200_000 }, (_, i) => `r${i}@example.com`) }));
    assert.deepEqual([error.code, error.status, error.field], ['ETOO_MANY_RECIPIENTS', 422, 'to']);
    assert.match(error.message, /200000 addresses, over the limit of 500/);
  });
});
