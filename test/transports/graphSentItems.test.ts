import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { odataString } from '../../shared/transports/graph/graphSentItems.js';

describe('the Sent Items lookup\'s $filter', () => {
  it('quotes a Message-ID as an OData string literal: a single quote inside is doubled, nothing else changes', () => {
    assert.equal(odataString('<a1b2@contoso.com>'), "'<a1b2@contoso.com>'");
    assert.equal(odataString("<o'brien.1@contoso.com>"), "'<o''brien.1@contoso.com>'");
    assert.equal(odataString("''"), "''''''");
  });
});
