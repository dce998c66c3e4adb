import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_POLL_SCHEDULE, pollSchedule } from '../../shared/receive/pollSchedule.js';

describe('the poll timer schedule', () => {
  it('names the POLL_SCHEDULE app setting when it is set, so the host resolves it', () => {
    assert.equal(pollSchedule({ POLL_SCHEDULE: '0 */5 * * * *' }), '%POLL_SCHEDULE%');
  });

  it('falls back to every minute when the setting is missing or empty, instead of a host that will not start', () => {
    assert.equal(pollSchedule({}), DEFAULT_POLL_SCHEDULE);
    assert.equal(pollSchedule({ POLL_SCHEDULE: '  ' }), DEFAULT_POLL_SCHEDULE);
    assert.equal(DEFAULT_POLL_SCHEDULE, '0 */1 * * * *');
  });
});
