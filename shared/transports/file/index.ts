import path from 'node:path';
import { z } from 'zod';
import { APP_ROOT } from '../../config/profiles.js';
import type { TransportDescriptor } from '../descriptor.js';

const sendFields = {
  /** The folder .eml files are written to (default <MAIL_DIR>/outbox). */
  folder: z.string().min(1).optional(),
};
type FileSend = { folder?: string };

/**
 * Folders of .eml files both ways: the built-in `local` profile, so that sending and polling run
 * the production paths with no server. Nothing to authenticate to, so nothing to consent to.
 */
export const file: TransportDescriptor = {
  name: 'file',
  remote: false,
  send: {
    config: { fields: sendFields },
    create(profile) {
      const { FileSender } = require('./fileSender.js') as typeof import('./fileSender.js');
      const folder = (profile.send as FileSend | undefined)?.folder;
      return new FileSender(path.resolve(APP_ROOT, folder ?? path.join('.mail', 'outbox')));
    },
    permissions: () => [],
    delegated: () => [],
    describe: () => 'send via file',
  },
  receive: {
    config: { fields: {} },
    create(profile) {
      const { FileReader } = require('./fileReader.js') as typeof import('./fileReader.js');
      const moveTo = profile.receive?.moveTo;
      return new FileReader({
        folder: path.resolve(APP_ROOT, profile.receive?.folder ?? path.join('.mail', 'inbox')),
        ...(moveTo !== undefined && { moveTo: path.resolve(APP_ROOT, moveTo) }),
      });
    },
    permissions: () => [],
    delegated: () => [],
    describe: (p) => `receive via file, afterFetch ${p.receive?.afterFetch}`,
    opened: (p) => `folder ${p.receive?.folder} of ${p.mailbox} over file`,
  },
};
