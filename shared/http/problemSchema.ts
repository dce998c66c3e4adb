import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { Problem } from './problem.js';

const CODES = Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]];

/**
 * What toProblem answers, for the OpenAPI document and the tests that hold answers to it. Kept
 * apart from problem.ts so that the functions, which load that file, do not build it at start-up.
 */
export const problemSchema = z
  .object({
    type: z.string().regex(/^urn:m365-mail:error:[A-Z_]+$/).meta({ description: 'urn:m365-mail:error:<code>' }),
    title: z.string().meta({ description: "The code's title, the same for every answer with this code." }),
    status: z.number().int().min(400).max(599),
    detail: z.string().meta({ description: 'What happened, redacted: never a secret or a token.' }),
    code: z.enum(CODES).meta({ description: 'The stable error code (docs/errors.md): branch on it, never on the text.' }),
    field: z.string().optional().meta({ description: 'The offending field, header or query parameter, e.g. to.0, attachments.1.content, idempotency-key.' }),
    hint: z.string().optional().meta({ description: 'What to do about it.' }),
    profile: z.string().optional(),
    retryAfter: z.number().nonnegative().optional().meta({ description: 'Seconds to wait before trying again; the Retry-After header says the same.' }),
  })
  .meta({ description: 'RFC 9457 problem details with a stable code, the field at fault and a hint.' }) satisfies z.ZodType<Problem>;
