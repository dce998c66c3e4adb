import type { TransportDescriptor } from '../descriptor.js';

/** POP3 over TLS with XOAUTH2: one folder and no flags (RFC 1939), which the config check says at start-up rather than at the first poll. */
export const pop3: TransportDescriptor = {
  name: 'pop3',
  remote: true,
  receive: {
    config: {
      fields: {},
      check(r, issue) {
        if (r.afterFetch === 'markRead' || r.afterFetch === 'move') issue(['afterFetch'], `"${r.afterFetch}" is not possible over POP3: use "delete" or "none", or receive via imap or graph`);
        if (r.folder.toUpperCase() !== 'INBOX') issue(['folder'], 'POP3 reads only the inbox: use "Inbox", or receive via imap or graph');
        if (r.filters?.unreadOnly) issue(['filters', 'unreadOnly'], 'POP3 has no read flags: remove unreadOnly, or receive via imap or graph');
      },
    },
    create(profile, deps) {
      const { Pop3Reader } = require('./pop3Reader.js') as typeof import('./pop3Reader.js');
      return new Pop3Reader(profile, deps);
    },
    permissions: () => [{ api: 'exchange', purpose: 'read mail over POP3', anyOf: ['POP.AccessAsApp'] }],
    delegated: () => [{ api: 'exchange', permission: 'POP.AccessAsUser.All' }],
    describe: (p) => `receive via pop3 from ${p.endpoints.pop3.host}:${p.endpoints.pop3.port} (TLS, XOAUTH2), afterFetch ${p.receive?.afterFetch}`,
    opened: (p) => `the mailbox of ${p.mailbox} over pop3 at ${p.endpoints.pop3.host}:${p.endpoints.pop3.port}`,
  },
};
