import type { Caller } from '../config/profiles.js';
import { MailError } from '../errors.js';
import { redact } from '../redact.js';
import type { SendState } from '../state/sendState.js';
import type { Reconciled, SendError, SendStatus } from '../state/sendStatusStore.js';

/** GET /api/send/{id}: what a client sees of one send. */
export interface SendStatusView {
  id: string;
  status: SendStatus;
  attempts: number;
  messageId?: string;
  lastError?: { code: string; detail: string; hint?: string };
  /** When a send waiting for a retry is next tried. */
  nextAttemptAt?: string;
  /** How an attempt whose outcome was unknown (a crash, a connection lost after the message went) was settled. */
  reconciled?: Reconciled;
  createdAt: string;
  updatedAt: string;
}

/**
 * The status of a queued send, or of a sync send that carried an Idempotency-Key (a sync send
 * without one is answered in full by its 200 and not recorded): ESEND_NOT_FOUND otherwise.
 */
export async function readSendStatus(state: SendState, id: string, options: { abortSignal?: AbortSignal; caller?: Caller } = {}): Promise<SendStatusView> {
  const stored = id === '' ? undefined : await state.statuses.get(id, options);
  // Another caller's send is answered as no send at all: its existence is not this caller's to learn.
  const visible = stored !== undefined && (options.caller === undefined || options.caller.admin || stored.record.caller === options.caller.name);
  if (!stored || !visible) {
    throw new MailError('ESEND_NOT_FOUND', `no send with id "${id.slice(0, 100)}"`, {
      field: 'id',
      hint: 'Use the id (or Location) that POST /api/send answered with; sends without an Idempotency-Key in sync mode are not recorded.',
    });
  }
  const { record } = stored;
  return {
    id: record.id,
    status: record.status,
    attempts: record.attempts,
    ...(record.messageId !== undefined ? { messageId: record.messageId } : {}),
    ...(record.lastError ? { lastError: { code: record.lastError.code, detail: record.lastError.detail, ...(record.lastError.hint !== undefined ? { hint: record.lastError.hint } : {}) } } : {}),
    ...(record.status === 'queued' && record.nextAttemptAt !== undefined ? { nextAttemptAt: record.nextAttemptAt } : {}),
    ...(record.reconciled !== undefined ? { reconciled: record.reconciled } : {}),
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
  };
}

/** How an error is recorded on a send: code, status, and detail and hint redacted as a problem's are. */
export function sendErrorOf(error: MailError): SendError {
  return { code: error.code, detail: redact(error.message), hint: error.hint === undefined ? undefined : redact(error.hint), status: error.status };
}
