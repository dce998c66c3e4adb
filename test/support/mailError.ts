import assert from 'node:assert/strict';
import { MailError } from '../../shared/errors.js';

/** Awaits a promise that must reject with a MailError, and returns that error for assertions on code, field and hint. */
export async function mailErrorFrom(promise: Promise<unknown>): Promise<MailError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof MailError, `expected a MailError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a MailError, but the promise resolved');
}

/** The MailError a synchronous call throws. */
export function mailErrorOf(call: () => unknown): MailError {
  try {
    call();
  } catch (error) {
    assert.ok(error instanceof MailError, `expected a MailError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected a MailError, but the call returned');
}
