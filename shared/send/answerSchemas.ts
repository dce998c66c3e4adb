import { z } from 'zod';
import { RECONCILED, SEND_STATUSES } from '../state/sendStatusStore.js';
import type { SendAnswer } from './acceptSend.js';
import type { SendStatusView } from './sendStatus.js';

/*
 * The answers of POST /api/send and GET /api/send/{id}, for the OpenAPI document: loaded only
 * when the document is built, so the send function's start-up does not pay for them.
 */

const sendId = z.string().meta({ description: 'Our id for this send: the invocation id of the request that made it.' });

export const sentAnswerSchema = z.object({
  id: sendId,
  status: z.literal('sent'),
  messageId: z.string().optional().meta({ description: 'The RFC 5322 Message-ID the app assigned, the same whatever the transport.' }),
}) satisfies z.ZodType<Extract<SendAnswer, { status: 200 }>['body']>;

export const queuedAnswerSchema = z.object({
  id: sendId,
  status: z.enum(SEND_STATUSES).meta({ description: 'queued, or on a replay the status the send has now.' }),
}) satisfies z.ZodType<Extract<SendAnswer, { status: 202 }>['body']>;

export const sendStatusViewSchema = z.object({
  id: sendId,
  status: z.enum(SEND_STATUSES).meta({ description: 'unknown: whether the message went out could not be settled and it will not be sent again (send.unknownOutcome "atMostOnce").' }),
  attempts: z.number().int().nonnegative(),
  messageId: z.string().optional(),
  lastError: z.object({ code: z.string(), detail: z.string(), hint: z.string().optional() }).optional(),
  nextAttemptAt: z.iso.datetime().optional().meta({ description: 'When a send waiting for a retry is next tried.' }),
  reconciled: z.enum(RECONCILED).optional().meta({
    description:
      'How an attempt whose outcome was unknown (the worker or request died, or the connection was lost after the whole message went) was settled before anything was sent again: foundInSentItems (its Message-ID is in the mailbox\'s sent mail: not sent again), notFound (looked for, not there: sent again), notChecked (the sender cannot look: send.unknownOutcome decided, "unknown" for atMostOnce).',
  }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
}) satisfies z.ZodType<SendStatusView>;
