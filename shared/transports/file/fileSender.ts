import { mkdir, writeFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { composeMime } from '../../mail/compose.js';
import type { OutgoingMessage } from '../../mail/outgoing.js';
import type { MailSender, SendResult } from '../types.js';

/** Writes each message as an .eml file (Bcc kept, as a local outbox should show it). Backs the built-in `local` profile. */
export class FileSender implements MailSender {
  readonly via = 'file' as const;

  constructor(private readonly folder: string) {}

  async send(message: OutgoingMessage): Promise<SendResult> {
    await mkdir(this.folder, { recursive: true });
    const raw = await composeMime(message, { keepBcc: true });
    const base = `${new Date().toISOString().replace(/[:.]/g, '-')}-${message.messageId.replace(/[<>]/g, '').replace(/[^A-Za-z0-9.@-]/g, '_')}.eml`;
    const target = path.join(this.folder, base);
    // Written under a temporary name and renamed, so a reader of the folder never sees half a file.
    await writeFile(`${target}.tmp`, raw);
    await rename(`${target}.tmp`, target);
    return { messageId: message.messageId, providerId: base };
  }
}
