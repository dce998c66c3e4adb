import { Transform } from 'node:stream';
import type { Transporter } from 'nodemailer';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';

/** Set once nodemailer has read the whole message into the DATA stream: the terminator follows it. */
export interface Handover {
  complete: boolean;
}

/** The mail option that carries a message's Handover to the plugin (nodemailer copies a message's options by key). */
export const HANDOVER_OPTION = 'm365Handover';

/**
 * nodemailer's 'stream' plugin step sees each message just before it is streamed after DATA:
 * a pass-through at the end of the message's stream marks its Handover complete when the last
 * byte went by. An error after that without a server reply (the connection closed, the socket
 * timed out, the send was aborted) leaves the outcome unknown: the server may have received the
 * terminator and queued the message. nodemailer's own error says only `command: 'CONN'` then.
 */
export function trackHandover(pool: Transporter): void {
  pool.use('stream', (mail, done) => {
    const handover = (mail.data as Record<string, unknown>)[HANDOVER_OPTION] as Handover | undefined;
    if (handover) {
      mail.message.transform(
        () =>
          new Transform({
            transform: (chunk, _encoding, callback) => callback(null, chunk),
            flush: (callback) => {
              handover.complete = true;
              callback();
            },
          }),
      );
    }
    done();
  });
}

/** nodemailer's codes for a session that ended without an answer from the server. */
const LOST = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET']);

/**
 * The MailError for a send that failed after the whole message was handed over and before the
 * server answered it; undefined when the failure is a definite one (the server replied, or the
 * message never went out whole).
 */
export function unknownOutcome(profile: Profile, handover: Handover, error: unknown, aborted: boolean): MailError | undefined {
  if (!handover.complete) return undefined;
  const e = (error ?? {}) as { code?: unknown; responseCode?: unknown };
  if (!aborted && (typeof e.responseCode === 'number' || !LOST.has(String(e.code)))) return undefined;
  return new MailError('ECONNECTION', `profile "${profile.name}": the SMTP session ended after the message was sent and before the server answered it (${aborted ? 'aborted' : String(e.code)})`, {
    profile: profile.name,
    outcomeUnknown: true,
    retryAfter: 30,
    cause: error,
    hint: 'The server may have accepted the message. A queued send, or a repeat with the same Idempotency-Key, looks for it in the mailbox\'s Sent folder before sending again (send.unknownOutcome decides when it cannot look).',
  });
}
