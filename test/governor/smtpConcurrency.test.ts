import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { smtpPoolOptions } from '../../shared/transports/smtp/smtpSender.js';
import { clearGovernorState } from '../support/governorState.js';
import { SendHarness } from '../support/sendHarness.js';

describe('SMTP: Exchange\'s concurrent connection limit (432 4.3.2)', () => {
  const h = SendHarness.forSuite();
  beforeEach(() => clearGovernorState(h.state.account));

  it('a queued send refused with 432 4.3.2 waits on the queue for at least 60 s, is not failed, and goes out on the next delivery', async () => {
    h.smtp.failures.mailFrom = { code: 432, text: '4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more information.', times: 1 };
    const accepted = await h.post({ profile: 'smtp', to: 'alice@example.com', subject: 'Busy', text: 'Hello.' }, { query: '?mode=queued' });
    const id = String(accepted.body.id);
    const refusedAt = Date.now();
    assert.equal(await h.drainQueue(), 1);

    const waiting = await h.status(id);
    assert.equal(waiting.body.status, 'queued', waiting.raw);
    assert.equal((waiting.body.lastError as { code?: string }).code, 'ETHROTTLED');
    assert.ok(Date.parse(String(waiting.body.nextAttemptAt)) - refusedAt >= 59_000, `retried after ${(Date.parse(String(waiting.body.nextAttemptAt)) - refusedAt) / 1000} s`);
    assert.equal(h.smtp.messages.length, 0);

    await h.deliver({ id });
    assert.equal((await h.status(id)).body.status, 'sent');
    assert.equal(h.smtp.messages.length, 1);
  });

  it('the pool of one profile opens at most 3 connections, Exchange Online\'s limit per mailbox', () => {
    assert.equal(smtpPoolOptions({ host: 'smtp.office365.com', port: 587 }, 'starttls').maxConnections, 3);
  });
});
