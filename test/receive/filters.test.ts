import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';

/** One inbox, read by one profile per filter setting; each test names which subjects reach the webhook. */
describe('receive filters, end to end through a poll', () => {
  const h = new ReceiveHarness();
  let inbox: string;
  let profileCount = 0;

  before(async () => {
    await h.start();
    inbox = h.folder('inbox');
    const messages = [
      { name: 'alice', from: 'alice@fabrikam.com', subject: 'Printer jammed', text: 'The printer on floor 2 is jammed.' },
      { name: 'bob', from: 'bob@eu.fabrikam.com', subject: 'VPN', text: 'Cannot connect to the VPN.' },
      { name: 'carol', from: 'carol@northwind.com', subject: 'Question', text: 'Is the network down? URGENT please.' },
      { name: 'dave', from: 'dave@northwind.com', subject: 'Invoice', text: 'Invoice attached.', attachments: [{ filename: 'invoice.pdf', content: Buffer.from('%PDF-1.4 invoice'), contentType: 'application/pdf' }] },
      { name: 'erin', from: 'erin@tailspin.com', subject: 'Server on fire', text: 'Everything is down.', headers: { 'X-Priority': '1 (Highest)', Importance: 'High' } },
      { name: 'frank', from: 'frank@tailspin.com', subject: 'Newsletter', text: 'x'.repeat(20_000), headers: { 'X-Priority': '5 (Lowest)', Importance: 'Low' } },
    ];
    let order = 0;
    for (const m of messages) {
      dropEml(inbox, `${m.name}.eml`, await composeEml({ to: 'support@contoso.com', messageId: `<${m.name}@filters.test>`, ...m }), ++order);
    }
  });
  after(() => h.stop());

  async function delivered(filters: Record<string, unknown>): Promise<string[]> {
    const name = `f${++profileCount}`;
    h.webhook.reset();
    const runtime = h.runtime({ [name]: h.fileProfile(inbox, { filters }) });
    const result = await pollMailbox(runtime, name);
    assert.equal(result.status, 'completed');
    assert.equal(result.delivered + result.filtered, 6, 'every message is either delivered or filtered');
    return h.webhook.accepted<DeliveredMessage>().map((m) => m.from!.address.split('@')[0]!);
  }

  it('allow mode with emails delivers only those senders (and *@domain patterns)', async () => {
    assert.deepEqual(await delivered({ mode: 'allow', emails: ['Alice@Fabrikam.com', '*@tailspin.com'] }), ['alice', 'erin', 'frank']);
  });

  it('allow mode with domains includes their subdomains', async () => {
    assert.deepEqual(await delivered({ mode: 'allow', domains: ['fabrikam.com'] }), ['alice', 'bob']);
  });

  it('allow mode with keywords matches subject or body, case-insensitively', async () => {
    assert.deepEqual(await delivered({ mode: 'allow', keywords: ['urgent', 'PRINTER'] }), ['alice', 'carol']);
  });

  it('ignore mode drops what any list matches and delivers the rest', async () => {
    assert.deepEqual(await delivered({ mode: 'ignore', emails: ['alice@fabrikam.com'], domains: ['northwind.com'], keywords: ['newsletter'] }), ['bob', 'erin']);
  });

  it('hasAttachments true keeps only messages with a file attached; false keeps the others', async () => {
    assert.deepEqual(await delivered({ hasAttachments: true }), ['dave']);
    assert.deepEqual(await delivered({ hasAttachments: false }), ['alice', 'bob', 'carol', 'erin', 'frank']);
  });

  it('minImportance drops messages below it', async () => {
    assert.deepEqual(await delivered({ minImportance: 'high' }), ['erin']);
    assert.deepEqual(await delivered({ minImportance: 'normal' }), ['alice', 'bob', 'carol', 'dave', 'erin']);
  });

  it('a filtered message is passed by the cursor and not offered again', async () => {
    const name = `f${++profileCount}`;
    const runtime = h.runtime({ [name]: h.fileProfile(inbox, { filters: { mode: 'allow', emails: ['erin@tailspin.com'] } }) });
    const first = await pollMailbox(runtime, name);
    assert.deepEqual([first.delivered, first.filtered], [1, 5]);
    const second = await pollMailbox(runtime, name);
    assert.deepEqual([second.delivered, second.filtered], [0, 0]);
  });
});
