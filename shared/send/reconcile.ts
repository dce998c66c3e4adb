import type { Profile } from '../config/profiles.js';
import { asMailError } from '../errors.js';
import { withAuthRetry } from '../identity/tokenProvider.js';
import type { MailRuntime } from '../runtime.js';
import type { Reconciled } from '../state/sendStatusStore.js';
import { isTransient } from './retryPolicy.js';

/** What to do with a send whose last attempt's outcome is unknown, and how that was decided. */
export interface Settlement {
  reconciled: Reconciled;
  /** sent: it went out, do not send it again; send: send it (again); unknown: never send it again (at most once). */
  next: 'sent' | 'send' | 'unknown';
}

/**
 * Settles an attempt whose outcome is unknown (its worker or request died, or the connection
 * was lost after the whole message went) before anything is sent again: the sender looks for
 * the Message-ID in the mailbox's sent mail where it can (Graph: Sent Items; SMTP: the Sent
 * folder over IMAP, send.lookupSent). Where it cannot, or is not allowed to, the profile's
 * send.unknownOutcome decides: "atMostOnce" (the default) never sends it again, "atLeastOnce"
 * sends it again with the same Message-ID. A lookup that fails transiently throws, so that the
 * send is retried later and still looks first.
 */
export async function settleUnknownAttempt(runtime: MailRuntime, profile: Profile, messageId: string, options: { id: string; abortSignal?: AbortSignal }): Promise<Settlement> {
  const sender = runtime.sender(profile);
  const log = { operation: 'send.reconcile', profile: profile.name, id: options.id, via: sender.via };
  if (sender.findSent) {
    const findSent = sender.findSent.bind(sender);
    try {
      const found = await withAuthRetry(runtime.tokens(profile), () => findSent(messageId, { abortSignal: options.abortSignal }));
      runtime.logger.info({ ...log, outcome: 'ok', reconciled: found ? 'foundInSentItems' : 'notFound' });
      return found ? { reconciled: 'foundInSentItems', next: 'sent' } : { reconciled: 'notFound', next: 'send' };
    } catch (error) {
      const failure = asMailError(error);
      if (isTransient(failure)) throw failure;
      // Refused for good (a permission the lookup needs and the app lacks, no Sent folder): the policy decides, as if the sender could not look.
      runtime.logger.warn({ ...log, outcome: 'error', code: failure.code, reason: 'lookup refused; send.unknownOutcome decides' });
    }
  }
  const next = profile.send?.unknownOutcome === 'atLeastOnce' ? 'send' : 'unknown';
  runtime.logger.info({ ...log, outcome: 'ok', reconciled: 'notChecked', next });
  return { reconciled: 'notChecked', next };
}
