import { PassThrough, type Readable } from 'node:stream';
import type { MailError } from '../errors.js';

/**
 * A message source whose failures arrive as MailErrors. A connection lost while a source is
 * streamed surfaces as a stream error, not a rejected call, so it passes the reader's
 * translation here, at the transport edge, like every other provider failure: the poll then
 * reports ECONNECTION (retry), not an unexplained EPROVIDER. A consumer that abandons the
 * returned stream, or an abort, destroys the provider's, so that its connection is released
 * or drained.
 */
export function translatedSource(source: Readable, translate: (error: unknown) => MailError, options: { abortSignal?: AbortSignal } = {}): Readable {
  const out = new PassThrough();
  source.once('error', (error: unknown) => out.destroy(translate(error)));
  const { abortSignal } = options;
  const abort = () => out.destroy(abortSignal?.reason as Error);
  abortSignal?.addEventListener('abort', abort, { once: true });
  out.once('close', () => {
    abortSignal?.removeEventListener('abort', abort);
    if (!source.readableEnded && !source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}
