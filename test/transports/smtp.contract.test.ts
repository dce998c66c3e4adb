import { setTimeout as delay } from 'node:timers/promises';
import type { TokenProvider } from '../../shared/identity/tokenProvider.js';
import { SmtpSender } from '../../shared/transports/smtp/smtpSender.js';
import { portNobodyListensOn, UNISSUED_TOKENS } from '../contract/loopback.js';
import { describeMailSender, type SenderFixture } from '../contract/mailSender.js';
import { mailFromMime } from '../contract/receivedMail.js';
import { SmtpPeer } from '../peers/smtpPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { senderSetup, type SenderSetup } from '../support/sendHarness.js';

const MAILBOX = 'support@contoso.com';
const APP = { tenantId: 'contoso-tenant', clientId: 'smtp-contract-app', secret: 'smtp-contract-secret-value' };

interface SmtpFixture extends SenderFixture {
  setup: SenderSetup;
}

/**
 * The SMTP sender in each of its security modes, against a loopback server speaking that mode:
 * STARTTLS (port 587 style) and implicit TLS (port 465 style, send.smtpSecurity "implicit").
 */
for (const security of ['starttls', 'implicit'] as const) {
describeMailSender(`SMTP (nodemailer, XOAUTH2, ${security === 'implicit' ? 'implicit TLS' : 'STARTTLS'}) against a loopback submission server`, () => {
  const entra = new TokenEndpointPeer();
  const smtp = new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX], implicitTls: security === 'implicit' });

  /** A sender of its own (its own pool) on the shared server, or on `peer`, which the fixture then stops. */
  async function fixture(options: { peer?: SmtpPeer; endpoint?: string; tokens?: TokenProvider } = {}): Promise<SmtpFixture> {
    const peer = options.peer ?? smtp;
    const setup = senderSetup({ via: 'smtp', mailbox: MAILBOX, app: APP, endpoints: { authority: entra.url, smtp: options.endpoint ?? peer.endpoint }, tokens: options.tokens, send: { smtpSecurity: security } });
    const sender = new SmtpSender(setup.profile, setup.deps);
    const messagesBefore = peer.messages.length;
    const authBefore = peer.authAttempts.length;
    return {
      sender,
      setup,
      received: () => Promise.all(peer.messages.slice(messagesBefore).map((m) => mailFromMime(m.raw, { envelope: m.envelope.to }))),
      authentications: () => peer.authAttempts.slice(authBefore).map((a) => (a.accepted ? 'accepted' : 'refused')),
      close: async () => {
        await sender.close();
        if (peer !== smtp) await peer.stop();
      },
    };
  }

  return {
    start: async () => {
      await Promise.all([entra.start(), smtp.start()]);
      entra.register({ ...APP });
    },
    stop: async () => {
      await smtp.stop();
      await entra.stop();
    },
    mailbox: MAILBOX,
    fixture: () => fixture(),
    bodies: 'both',
    hidesBcc: true,
    auth: {
      session: (f) => f.setup,
      tokenRequests: () => entra.tokenRequests().filter((r) => r.clientId === APP.clientId).length,
      refused: { fixture: () => fixture({ tokens: UNISSUED_TOKENS }), hint: [/SMTP\.SendAsApp/], providerCode: '5.7.3' },
      expireTokens: async () => {
        entra.revokeAll();
        // A pooled session authenticated with the old token goes on working; the server ends it, as Exchange ends idle ones.
        smtp.closeConnections();
        await delay(50);
      },
    },
    // A server that speaks no TLS at all: STARTTLS is required (ETLS when it is not offered), and implicit TLS meets a plain-text greeting.
    insecureServer: async () => {
      const plain = await new SmtpPeer({ tokens: entra, mailboxes: [MAILBOX], startTls: false }).start();
      return fixture({ peer: plain });
    },
    unreachable: async () => fixture({ endpoint: `127.0.0.1:${await portNobodyListensOn()}` }),
  };
});
}
