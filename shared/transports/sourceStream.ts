import { PassThrough, type Readable } from 'node:stream';
import type { MailError } from '../errors.js';

/**
 * A message source whose failures arrive as MailErrors. A connection lost while a source is
 * streamed surfaces as a stream error, not a rejected call, so it passes the reader's
 * translation here, at the transport edge, like every other provider failure: the poll then
 * reports ECONNECTION (retry), not an unexplained EPROVIDER. A consumer that abandons the
 * returned stream destroys the provider's, so that its connection is released or drained.
 */
export function translatedSource(source: Readable, translate: (error: unknown) => MailError): Readable {
  const out = new PassThrough();
  source.once('error', (error: unknown) => out.destroy(translate(error)));
  out.once('close', () => {
    if (!source.readableEnded && !source.destroyed) source.destroy();
  });
  source.pipe(out);
  return out;
}
