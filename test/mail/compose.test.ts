import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { simpleParser, type AddressObject } from 'mailparser';
import { composeMime } from '../../shared/mail/compose.js';
import type { OutgoingMessage } from '../../shared/mail/outgoing.js';

const logo = randomBytes(2048);
const report = randomBytes(70_000);

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    from: { name: 'Service Desk', address: 'desk@contoso.com' },
    to: [{ name: 'Ann Smith', address: 'ann@example.com' }, { address: 'bob@example.com' }],
    cc: [{ name: 'Zoë Ünicode', address: 'zoe@example.com' }],
    bcc: [{ address: 'audit@contoso.com' }],
    replyTo: [{ address: 'noreply-desk@contoso.com' }],
    subject: 'Ticket #42 — Drucker im 2. Stock',
    text: 'Plain text body\nsecond line',
    html: '<p>HTML body <img src="cid:logo@desk"></p>',
    importance: 'normal',
    headers: { 'X-Ticket-Id': '42', 'X-Correlation': 'abc-123' },
    attachments: [
      { filename: 'logo.png', contentType: 'image/png', content: logo, contentId: 'logo@desk' },
      { filename: 'Bericht März.pdf', contentType: 'application/pdf', content: report },
    ],
    messageId: '<1b4e28ba-2fa1-11d2-883f-0016d3cca427@contoso.com>',
    ...overrides,
  };
}

const addresses = (field: AddressObject | AddressObject[] | undefined) =>
  (Array.isArray(field) ? field : field ? [field] : []).flatMap((a) => a.value.map((v) => ({ name: v.name, address: v.address })));

describe('MIME composition through nodemailer\'s composer, read back with mailparser', () => {
  it('keeps addresses, subject, both bodies, custom headers and the Message-ID', async () => {
    // keepCidLinks: mailparser would otherwise inline the image as a data: URL.
    const parsed = await simpleParser(await composeMime(message()), { keepCidLinks: true });
    assert.deepEqual(addresses(parsed.from), [{ name: 'Service Desk', address: 'desk@contoso.com' }]);
    assert.deepEqual(addresses(parsed.to), [{ name: 'Ann Smith', address: 'ann@example.com' }, { name: '', address: 'bob@example.com' }]);
    assert.deepEqual(addresses(parsed.cc), [{ name: 'Zoë Ünicode', address: 'zoe@example.com' }]);
    assert.deepEqual(addresses(parsed.replyTo), [{ name: '', address: 'noreply-desk@contoso.com' }]);
    assert.equal(parsed.subject, 'Ticket #42 — Drucker im 2. Stock');
    assert.equal(parsed.text?.trim(), 'Plain text body\nsecond line');
    assert.match(String(parsed.html), /<p>HTML body <img src="cid:logo@desk"><\/p>/);
    assert.equal(parsed.messageId, '<1b4e28ba-2fa1-11d2-883f-0016d3cca427@contoso.com>');
    assert.equal(parsed.headers.get('x-ticket-id'), '42');
    assert.equal(parsed.headers.get('x-correlation'), 'abc-123');
  });

  it('an inline image is a related part with its Content-ID; an attachment keeps its name and exact bytes', async () => {
    const parsed = await simpleParser(await composeMime(message()));
    const inline = parsed.attachments.find((a) => a.cid === 'logo@desk');
    assert.ok(inline, 'no part with Content-ID <logo@desk>');
    assert.equal(inline.contentType, 'image/png');
    assert.equal(inline.contentDisposition, 'inline');
    assert.equal(inline.related, true);
    assert.ok(inline.content.equals(logo));

    const pdf = parsed.attachments.find((a) => a.filename === 'Bericht März.pdf');
    assert.ok(pdf, `attachments: ${parsed.attachments.map((a) => a.filename).join(', ')}`);
    assert.equal(pdf.contentType, 'application/pdf');
    assert.equal(pdf.contentDisposition, 'attachment');
    assert.ok(pdf.content.equals(report));
    assert.equal(parsed.attachments.length, 2);
  });

  it('Bcc is left out of the source unless asked for (the file outbox keeps it)', async () => {
    const sent = await composeMime(message());
    assert.equal((await simpleParser(sent)).bcc, undefined);
    assert.doesNotMatch(sent.toString('latin1'), /audit@contoso\.com/);

    const kept = await simpleParser(await composeMime(message(), { keepBcc: true }));
    assert.deepEqual(addresses(kept.bcc), [{ name: '', address: 'audit@contoso.com' }]);
  });

  it('importance high and low set X-Priority, X-MSMail-Priority and Importance; normal sets none', async () => {
    const headerLines = async (m: OutgoingMessage) => {
      const parsed = await simpleParser(await composeMime(m));
      return { priority: parsed.headers.get('priority'), lines: parsed.headerLines.filter((h) => /priority|importance/.test(h.key)).map((h) => h.line) };
    };
    assert.deepEqual(await headerLines(message({ importance: 'high' })), {
      priority: 'high',
      lines: ['X-Priority: 1 (Highest)', 'X-Msmail-Priority: High', 'Importance: High'],
    });
    assert.deepEqual(await headerLines(message({ importance: 'low' })), {
      priority: 'low',
      lines: ['X-Priority: 5 (Lowest)', 'X-Msmail-Priority: Low', 'Importance: Low'],
    });
    assert.deepEqual(await headerLines(message()), { priority: undefined, lines: [] });
  });

  it('importance wins over a custom X-Priority header of any case, without a duplicate header', async () => {
    const raw = (await composeMime(message({ importance: 'high', headers: { 'x-priority': '5' } }))).toString('latin1');
    const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
    assert.deepEqual(head.match(/^x-priority:.*$/gim), ['X-Priority: 1 (Highest)']);
  });

  it('a text-only message is a single text/plain part', async () => {
    const parsed = await simpleParser(await composeMime(message({ html: undefined, attachments: [] })));
    assert.equal(parsed.html, false);
    assert.deepEqual(parsed.headers.get('content-type'), { value: 'text/plain', params: { charset: 'utf-8' } });
  });
});
