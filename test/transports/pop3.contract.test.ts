import { Pop3Reader } from '../../shared/transports/pop3/pop3Reader.js';
import { portNobodyListensOn } from '../contract/loopback.js';
import { describeMailboxReader, type ReaderFixture } from '../contract/mailboxReader.js';
import { Pop3Peer, type Pop3PeerOptions } from '../peers/pop3Peer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { CLIENT_ID, MAILBOX, readerSetup, type ReaderSetup } from './readerHarness.js';

interface Pop3Fixture extends ReaderFixture {
  setup: ReaderSetup;
}

describeMailboxReader('POP3 (AUTH XOAUTH2) against a loopback POP3 server', () => {
  const entra = new TokenEndpointPeer();

  // One POP3 server per case, as each serves one maildrop; the token endpoint is shared.
  async function mailbox(peer: Partial<Pop3PeerOptions> = {}): Promise<Pop3Fixture> {
    const pop3 = await new Pop3Peer(entra, { mailbox: MAILBOX, ...peer }).start();
    const setup = readerSetup(entra, { via: 'pop3' }, { pop3: pop3.endpoint });
    return {
      setup,
      reader: new Pop3Reader(setup.profile, setup.deps),
      add: (raw) => pop3.add(raw),
      held: async () => pop3.messages().map((m) => ({ raw: m.raw })),
      authentications: () => pop3.authAttempts.map((a) => (a.outcome === 'ok' ? 'accepted' : 'refused')),
      close: () => pop3.stop(),
    };
  }

  return {
    start: async () => {
      await entra.start();
    },
    stop: () => entra.stop(),
    mailbox: () => mailbox(),
    reports: { size: true, receivedAt: false, seen: false },
    perMessageCursor: true,
    foreignCursor: { uidValidity: 1, lastUid: 9 },
    afterFetch: { markRead: false, delete: true },
    auth: {
      session: (f) => f.setup,
      tokenRequests: () => entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length,
      refused: { mailbox: () => mailbox({ grantedClients: ['some-other-app'] }), hint: [/POP\.AccessAsApp/, /PopEnabled/], providerCode: undefined },
      expireTokens: () => entra.revokeAll(),
    },
    untrustedServer: () => mailbox({ untrustedCertificate: true }),
    unreachable: async () => {
      const setup = readerSetup(entra, { via: 'pop3' }, { pop3: `127.0.0.1:${await portNobodyListensOn()}` });
      return { reader: new Pop3Reader(setup.profile, setup.deps), close: async () => {} };
    },
  };
});
