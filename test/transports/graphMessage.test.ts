import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { OutgoingMessage } from '../../shared/mail/outgoing.js';
import { planAttachments, toGraphMessage } from '../../shared/transports/graph/graphSender.js';

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    from: { address: 'support@contoso.com' },
    to: [{ name: 'Ann', address: 'ann@example.com' }],
    cc: [],
    bcc: [],
    replyTo: [],
    subject: 'Hello',
    text: 'plain',
    importance: 'normal',
    headers: {},
    attachments: [],
    messageId: '<id-1@contoso.com>',
    ...overrides,
  };
}

const MB = 1024 * 1024;
const file = (name: string, bytes: number, contentId?: string) => ({ filename: name, contentType: 'application/octet-stream', content: Buffer.alloc(bytes, 1), contentId });

describe('our outgoing message as a Graph message resource', () => {
  it('takes the html body when both html and text are given, else the text', () => {
    assert.deepEqual(toGraphMessage(message({ html: '<b>x</b>' }), 'support@contoso.com').body, { contentType: 'html', content: '<b>x</b>' });
    assert.deepEqual(toGraphMessage(message(), 'support@contoso.com').body, { contentType: 'text', content: 'plain' });
  });

  it('sets from only when it is not the mailbox (case-insensitively), and carries our Message-ID as internetMessageId', () => {
    assert.equal(toGraphMessage(message({ from: { address: 'Support@Contoso.com' } }), 'support@contoso.com').from, undefined);
    assert.deepEqual(toGraphMessage(message({ from: { name: 'News', address: 'news@contoso.com' } }), 'support@contoso.com').from, { emailAddress: { name: 'News', address: 'news@contoso.com' } });
    assert.equal(toGraphMessage(message(), 'support@contoso.com').internetMessageId, '<id-1@contoso.com>');
  });

  it('maps X- headers to internetMessageHeaders and leaves the property out when there are none', () => {
    assert.deepEqual(toGraphMessage(message({ headers: { 'X-A': '1' } }), 'support@contoso.com').internetMessageHeaders, [{ name: 'X-A', value: '1' }]);
    assert.equal('internetMessageHeaders' in toGraphMessage(message(), 'support@contoso.com'), false);
  });

  it('marks an attachment with a contentId as inline', () => {
    const graph = toGraphMessage(message({ attachments: [file('logo.png', 10, 'logo@x'), file('a.bin', 10)] }), 'support@contoso.com');
    assert.deepEqual(graph.attachments?.map((a) => [a['@odata.type'], a.name, a.isInline, a.contentId]), [
      ['#microsoft.graph.fileAttachment', 'logo.png', true, 'logo@x'],
      ['#microsoft.graph.fileAttachment', 'a.bin', false, undefined],
    ]);
  });
});

describe('which attachments need a draft', () => {
  it('small attachments that fit in 4 MB travel in the sendMail request', () => {
    const plan = planAttachments(message({ attachments: [file('a', MB), file('b', MB)] }), 'support@contoso.com');
    assert.deepEqual([plan.inline.length, plan.posted.length, plan.uploaded.length], [2, 0, 0]);
  });

  it('an attachment over 3 MB goes through an upload session', () => {
    const plan = planAttachments(message({ attachments: [file('big', 3 * MB + 1), file('small', 1000)] }), 'support@contoso.com');
    assert.deepEqual(plan.uploaded.map((a) => a.filename), ['big']);
    assert.deepEqual(plan.inline.map((a) => a.filename), ['small']);
  });

  it('attachments under 3 MB that together exceed the 4 MB request limit are posted one by one', () => {
    const plan = planAttachments(message({ attachments: [file('a', 2 * MB), file('b', 2 * MB), file('c', 100)] }), 'support@contoso.com');
    assert.deepEqual(plan.inline.map((a) => a.filename), ['a', 'c']);
    assert.deepEqual(plan.posted.map((a) => a.filename), ['b']);
    assert.equal(plan.uploaded.length, 0);
  });
});
