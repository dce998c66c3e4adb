import { ImapReader } from '../../shared/transports/imap/imapReader.js';
import { portNobodyListensOn } from '../contract/loopback.js';
import { describeMailboxReader, type ReaderFixture } from '../contract/mailboxReader.js';
import { ImapPeer, type ImapPeerOptions } from '../peers/imapPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { CLIENT_ID, MAILBOX, readerSetup, type ReaderSetup } from './readerHarness.js';

interface ImapFixture extends ReaderFixture {
  imap: ImapPeer;
  setup: ReaderSetup;
}

describeMailboxReader('IMAP (imapflow, XOAUTH2) against a loopback IMAP server', () => {
  const entra = new TokenEndpointPeer();

  // One IMAP server per case, as each serves one mailbox; the token endpoint is shared.
  async function mailbox(peer: Partial<ImapPeerOptions> = {}, receive: Record<string, unknown> = {}): Promise<ImapFixture> {
    const imap = await new ImapPeer(entra, { mailbox: MAILBOX, ...peer }).start();
    const setup = readerSetup(entra, { via: 'imap', ...receive }, { imap: imap.endpoint });
    return {
      imap,
      setup,
      reader: new ImapReader(setup.profile, setup.deps),
      add: (raw, { receivedAt }) => `${imap.uidValidity('INBOX')}:${imap.append('INBOX', raw, { internalDate: receivedAt })}`,
      held: async () => imap.messages('INBOX').map((m) => ({ raw: m.raw, seen: m.flags.includes('\\Seen') })),
      authentications: () => imap.authAttempts.map((a) => (a.outcome === 'ok' ? 'accepted' : 'refused')),
      close: () => imap.stop(),
    };
  }

  return {
    start: async () => {
      await entra.start();
    },
    stop: () => entra.stop(),
    mailbox: () => mailbox(),
    reports: { size: true, receivedAt: true, seen: true },
    perMessageCursor: true,
    acknowledgesAll: true,
    foreignCursor: { seen: ['abc'] },
    // A rebuilt folder: a new UIDVALIDITY and the messages renumbered from 1.
    invalidateCursors: (f) => {
      const validity = f.imap.changeUidValidity('INBOX');
      return f.imap.messages('INBOX').map((m) => `${validity}:${m.uid}`);
    },
    afterFetch: {
      markRead: true,
      delete: true,
      move: { target: () => 'Processed', movedTo: async (f, target) => (f.imap.hasFolder(target) ? f.imap.messages(target).map((m) => m.raw) : undefined) },
    },
    auth: {
      session: (f) => f.setup,
      tokenRequests: () => entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length,
      refused: { mailbox: () => mailbox({ grantedClients: ['some-other-app'] }), hint: [/IMAP\.AccessAsApp/, /Add-MailboxPermission/, /ImapEnabled/], providerCode: undefined },
      expireTokens: () => entra.revokeAll(),
    },
    untrustedServer: () => mailbox({ untrustedCertificate: true }),
    unreachable: async () => {
      const setup = readerSetup(entra, { via: 'imap' }, { imap: `127.0.0.1:${await portNobodyListensOn()}` });
      return { reader: new ImapReader(setup.profile, setup.deps), close: async () => {} };
    },
    missingFolder: () => mailbox({}, { folder: 'Nope' }),
  };
});
