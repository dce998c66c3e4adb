import path from 'node:path';
import type { Profile } from '../config/profiles.js';
import { APP_ROOT } from '../config/profiles.js';
import type { MailboxReader, MailSender, TransportDeps } from './types.js';

/**
 * The one place that reads `send.via` / `receive.via`. Each transport's module, and
 * with it its SDK, is loaded only when a profile first needs it (cold start).
 */
export function createSender(profile: Profile, deps: TransportDeps): MailSender {
  const via = profile.send?.via;
  switch (via) {
    case 'file': {
      const { FileSender } = require('./file/fileSender.js') as typeof import('./file/fileSender.js');
      return new FileSender(path.resolve(APP_ROOT, profile.send?.folder ?? path.join('.mail', 'outbox')));
    }
    case 'smtp': {
      const { SmtpSender } = require('./smtp/smtpSender.js') as typeof import('./smtp/smtpSender.js');
      return new SmtpSender(profile, deps);
    }
    case 'graph': {
      const { GraphSender } = require('./graph/graphSender.js') as typeof import('./graph/graphSender.js');
      return new GraphSender(profile, deps);
    }
    case undefined:
      throw new Error(`profile "${profile.name}" has no send section`);
  }
}

export function createReader(profile: Profile, deps: TransportDeps): MailboxReader {
  const via = profile.receive?.via;
  switch (via) {
    case 'file': {
      const { FileReader } = require('./file/fileReader.js') as typeof import('./file/fileReader.js');
      const moveTo = profile.receive?.moveTo;
      return new FileReader({
        folder: path.resolve(APP_ROOT, profile.receive?.folder ?? path.join('.mail', 'inbox')),
        ...(moveTo !== undefined && { moveTo: path.resolve(APP_ROOT, moveTo) }),
      });
    }
    case 'imap': {
      const { ImapReader } = require('./imap/imapReader.js') as typeof import('./imap/imapReader.js');
      return new ImapReader(profile, deps);
    }
    case 'pop3': {
      const { Pop3Reader } = require('./pop3/pop3Reader.js') as typeof import('./pop3/pop3Reader.js');
      return new Pop3Reader(profile, deps);
    }
    case 'graph': {
      const { GraphReader } = require('./graph/graphReader.js') as typeof import('./graph/graphReader.js');
      return new GraphReader(profile, deps);
    }
    case undefined:
      throw new Error(`profile "${profile.name}" has no receive section`);
  }
}
