import type { TransportDescriptor } from '../descriptor.js';

/** IMAP over TLS with XOAUTH2 (https://learn.microsoft.com/exchange/client-developer/legacy-protocols/how-to-authenticate-an-imap-pop-smtp-application-by-using-oauth). */
export const imap: TransportDescriptor = {
  name: 'imap',
  remote: true,
  receive: {
    config: { fields: {} },
    create(profile, deps) {
      const { ImapReader } = require('./imapReader.js') as typeof import('./imapReader.js');
      return new ImapReader(profile, deps);
    },
    permissions: () => [{ api: 'exchange', purpose: 'read mail over IMAP', anyOf: ['IMAP.AccessAsApp'] }],
    delegated: () => [{ api: 'exchange', permission: 'IMAP.AccessAsUser.All' }],
    describe: (p) => `receive via imap from ${p.endpoints.imap.host}:${p.endpoints.imap.port} (TLS, XOAUTH2), folder ${p.receive?.folder}, afterFetch ${p.receive?.afterFetch}`,
    opened: (p) => `folder ${p.receive?.folder} of ${p.mailbox} over imap at ${p.endpoints.imap.host}:${p.endpoints.imap.port}`,
  },
};
