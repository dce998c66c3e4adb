import type { ImapFlow } from 'imapflow';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import type { TransportDeps } from '../types.js';
import { connectImap } from './imapReader.js';
import { translateImapError } from './imapErrors.js';

/**
 * Names a Sent folder goes by where the server marks none `\Sent` (RFC 6154): Exchange Online's,
 * then the usual others. Exchange marks its "Sent Items" `\Sent`, so these are the fallback.
 */
export const SENT_FOLDER_NAMES = ['Sent Items', 'Sent', 'Sent Messages', 'INBOX.Sent'];

/** The mailbox's Sent folder: the one marked `\Sent`, else the first of SENT_FOLDER_NAMES it has. */
export async function sentFolderPath(profile: Profile, client: ImapFlow): Promise<string> {
  const folders = await client.list();
  const marked = folders.find((f) => f.specialUse === '\\Sent');
  if (marked) return marked.path;
  const named = SENT_FOLDER_NAMES.map((name) => folders.find((f) => f.path.toLowerCase() === name.toLowerCase())).find((f) => f !== undefined);
  if (named) return named.path;
  throw new MailError('EMAILBOX', `profile "${profile.name}": ${profile.mailbox} has no Sent folder over IMAP (none marked \\Sent, none named ${SENT_FOLDER_NAMES.join(', ')})`, {
    profile: profile.name,
    hint: 'The Sent folder is where a send whose outcome is unknown is looked up; without one, send.unknownOutcome decides.',
  });
}

/**
 * Whether the mailbox's Sent folder holds a message with this Message-ID (`UID SEARCH HEADER
 * Message-ID <id>`), over its own IMAP connection with the profile's token. Exchange Online
 * saves a message submitted over SMTP by the mailbox in its Sent Items, as Outlook does.
 */
export async function foundInImapSent(profile: Profile, deps: TransportDeps, messageId: string, options: { abortSignal?: AbortSignal } = {}): Promise<boolean> {
  const { client, release } = await connectImap(profile, deps, { folder: (c) => sentFolderPath(profile, c), abortSignal: options.abortSignal });
  try {
    // SEARCH HEADER matches a substring (RFC 3501 6.4.4): the whole <id> with its brackets is searched for.
    const uids = await client.search({ header: { 'message-id': messageId } }, { uid: true });
    if (!uids) throw new Error('the server refused UID SEARCH HEADER Message-ID');
    return uids.length > 0;
  } catch (error) {
    throw translateImapError(profile, error, 'search');
  } finally {
    release();
    await client.logout().catch(() => client.close());
  }
}
