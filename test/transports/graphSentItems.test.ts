import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_SENT_ITEMS_LOOKUP_SECONDS } from '../../shared/config/settings.js';
import { silentLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { SENT_ITEMS_RETRY_DELAYS_MS, odataString, sentItemsRetryDelays } from '../../shared/transports/graph/graphSentItems.js';
import { mailErrorOf } from '../support/mailError.js';

describe('the Sent Items lookup\'s $filter', () => {
  it('quotes a Message-ID as an OData string literal: a single quote inside is doubled, nothing else changes', () => {
    assert.equal(odataString('<a1b2@contoso.com>'), "'<a1b2@contoso.com>'");
    assert.equal(odataString("<o'brien.1@contoso.com>"), "'<o''brien.1@contoso.com>'");
    assert.equal(odataString("''"), "''''''");
  });
});

describe('how long the Sent Items lookup waits for the copy (SENT_ITEMS_LOOKUP_SECONDS)', () => {
  const sum = (delays: number[]) => delays.reduce((a, b) => a + b, 0);

  it('the setting\'s default is what the lookup\'s own pauses add up to, and that default scales to the same pauses', () => {
    assert.equal(sum(SENT_ITEMS_RETRY_DELAYS_MS), DEFAULT_SENT_ITEMS_LOOKUP_SECONDS * 1000);
    assert.deepEqual(sentItemsRetryDelays(DEFAULT_SENT_ITEMS_LOOKUP_SECONDS), SENT_ITEMS_RETRY_DELAYS_MS);
  });

  it('another value keeps the steps, growing, and adds up to it: 42 s doubles each pause, 0 asks six times without pausing', () => {
    assert.deepEqual(sentItemsRetryDelays(42), SENT_ITEMS_RETRY_DELAYS_MS.map((ms) => ms * 2));
    assert.deepEqual(sentItemsRetryDelays(0), [0, 0, 0, 0, 0]);
    const three = sentItemsRetryDelays(3);
    assert.ok(Math.abs(sum(three) - 3000) <= three.length, `${three.join(', ')} add up to 3 s`);
    assert.deepEqual([...three].sort((a, b) => a - b), three);
  });

  it('is read at start-up: a whole number of seconds, 0 or more, else ECONFIG naming it', () => {
    const runtime = (value: string) => new MailRuntime({ env: { MAIL_DIR: '/nonexistent/m365-mail', SENT_ITEMS_LOOKUP_SECONDS: value }, logger: silentLogger });
    assert.equal(runtime('3').settings.sentItemsLookupSeconds, 3);
    assert.equal(runtime('').settings.sentItemsLookupSeconds, DEFAULT_SENT_ITEMS_LOOKUP_SECONDS);
    for (const bad of ['-1', '2.5', '21s']) assert.equal(mailErrorOf(() => runtime(bad)).field, 'SENT_ITEMS_LOOKUP_SECONDS');
  });
});
