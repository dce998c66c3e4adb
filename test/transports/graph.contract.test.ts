import type { TokenProvider } from '../../shared/identity/tokenProvider.js';
import { GraphReader } from '../../shared/transports/graph/graphReader.js';
import { GraphSender } from '../../shared/transports/graph/graphSender.js';
import { portNobodyListensOn, UNISSUED_TOKENS } from '../contract/loopback.js';
import { describeMailboxReader, type ReaderFixture } from '../contract/mailboxReader.js';
import { describeMailSender, type ReceivedMail, type SenderFixture } from '../contract/mailSender.js';
import { GraphPeer, type GraphRequestRecord, type SentMessage } from '../peers/graphPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { senderSetup, type SenderSetup } from '../support/sendHarness.js';
import { CLIENT_ID, readerSetup, type ReaderSetup } from './readerHarness.js';

/** What the stand-in answered a request, as an authentication outcome: 401 and 403 refuse the token, an answer below 400 accepted it. */
function authentications(requests: GraphRequestRecord[]): Array<'accepted' | 'refused'> {
  return requests
    .filter((r) => r.path.startsWith('/v1.0/') && (r.status < 400 || r.status === 401 || r.status === 403))
    .map((r) => (r.status < 400 ? 'accepted' : 'refused'));
}

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface GraphReaderFixture extends ReaderFixture {
  mailbox: string;
  setup: ReaderSetup;
}

describeMailboxReader('Graph (delta, the real Graph client) against the Graph stand-in', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);
  let mailboxes = 0;

  // A fresh mailbox per case keeps folders and change logs apart on the one stand-in.
  async function mailbox(receive: Record<string, unknown> = {}, graphUrl?: string): Promise<GraphReaderFixture> {
    const address = `reader${++mailboxes}@contoso.com`;
    graph.addMailbox(address);
    const setup = readerSetup(entra, { via: 'graph', ...receive }, { graph: graphUrl ?? graph.url }, { mailbox: address });
    const requestsBefore = graph.requests.length;
    const path = encodeURIComponent(address);
    return {
      mailbox: address,
      setup,
      reader: new GraphReader(setup.profile, setup.deps),
      add: (raw, { receivedAt }) => graph.mail.addMessage(address, 'inbox', raw, { receivedAt }),
      held: async () => graph.mail.messagesIn(address, 'inbox').map((m) => ({ raw: m.raw, seen: m.isRead })),
      authentications: () => authentications(graph.requests.slice(requestsBefore).filter((r) => r.path.includes(path))),
      close: async () => {},
    };
  }

  return {
    start: async () => {
      await Promise.all([entra.start(), graph.start()]);
    },
    stop: async () => {
      await graph.stop();
      await entra.stop();
    },
    mailbox: () => mailbox(),
    reports: { size: false, receivedAt: true, seen: true },
    perMessageCursor: false,
    acknowledgesAll: true,
    foreignCursor: { uidValidity: 7, lastUid: 3 },
    invalidateCursors: () => {
      graph.mail.expireDeltaTokens();
      return undefined;
    },
    afterFetch: {
      markRead: true,
      delete: true,
      move: { target: () => 'Processed', movedTo: async (f, target) => graph.mail.messagesInFolderNamed(f.mailbox, target)?.map((m) => m.raw) },
    },
    auth: {
      session: (f) => f.setup,
      tokenRequests: () => entra.tokenRequests().filter((r) => r.clientId === CLIENT_ID).length,
      refused: {
        // The app holds no Mail.Read for this mailbox: Graph answers 403 ErrorAccessDenied.
        mailbox: async () => {
          const f = await mailbox();
          graph.inject({ status: 403, code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.', times: 100, match: new RegExp(escaped(encodeURIComponent(f.mailbox))) });
          return f;
        },
        hint: [/Mail\.Read/, /admin consent/],
        providerCode: 'ErrorAccessDenied',
      },
    },
    unreachable: async () => mailbox({}, `https://127.0.0.1:${await portNobodyListensOn()}`),
    missingFolder: () => mailbox({ folder: 'No Such Folder' }),
  };
});

const MAILBOX = 'support@contoso.com';
const APP = { tenantId: 'contoso-tenant', clientId: 'graph-contract-app', secret: 'graph-contract-secret-value' };

/** Graph's message resource as the sender contract compares it. */
function mailFromGraph(sent: SentMessage): ReceivedMail {
  const { message } = sent;
  const addresses = (list: Array<{ emailAddress: { name?: string; address: string } }> | undefined) =>
    (list ?? []).map(({ emailAddress: a }) => (a.name ? { name: a.name, address: a.address } : { address: a.address }));
  const html = message.body?.contentType.toLowerCase() === 'html';
  return {
    from: message.from?.emailAddress.address ?? sent.mailbox,
    to: addresses(message.toRecipients),
    cc: addresses(message.ccRecipients),
    bcc: addresses(message.bccRecipients).map((a) => a.address),
    replyTo: addresses(message.replyTo),
    subject: message.subject ?? '',
    ...(message.body && (html ? { html: message.body.content } : { text: message.body.content })),
    importance: (message.importance?.toLowerCase() ?? 'normal') as ReceivedMail['importance'],
    headers: Object.fromEntries((message.internetMessageHeaders ?? []).map((h) => [h.name.toLowerCase(), h.value])),
    attachments: sent.attachments.map((a) => ({ filename: a.name, contentType: a.contentType, content: a.bytes, ...(a.isInline && a.contentId !== undefined && { contentId: a.contentId }) })),
    messageId: sent.internetMessageId,
    shownToRecipients: JSON.stringify({ ...message, bccRecipients: undefined }),
  };
}

interface GraphSenderFixture extends SenderFixture {
  setup: SenderSetup;
}

describeMailSender('Graph (sendMail, the real Graph client) against the Graph stand-in', () => {
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);

  async function fixture(options: { graphUrl?: string; tokens?: TokenProvider } = {}): Promise<GraphSenderFixture> {
    const setup = senderSetup({ via: 'graph', mailbox: MAILBOX, app: APP, endpoints: { authority: entra.url, graph: options.graphUrl ?? graph.url }, tokens: options.tokens });
    const sentBefore = graph.sent.length;
    const requestsBefore = graph.requests.length;
    return {
      sender: new GraphSender(setup.profile, setup.deps),
      setup,
      received: async () => graph.sent.slice(sentBefore).map(mailFromGraph),
      authentications: () => authentications(graph.requests.slice(requestsBefore)),
      close: async () => {},
    };
  }

  return {
    start: async () => {
      await Promise.all([entra.start(), graph.start()]);
      entra.register({ ...APP });
      graph.addMailbox(MAILBOX);
    },
    stop: async () => {
      await graph.stop();
      await entra.stop();
    },
    mailbox: MAILBOX,
    fixture: () => fixture(),
    bodies: 'html only',
    hidesBcc: true,
    auth: {
      session: (f) => f.setup,
      tokenRequests: () => entra.tokenRequests().filter((r) => r.clientId === APP.clientId).length,
      refused: { fixture: () => fixture({ tokens: UNISSUED_TOKENS }), hint: [/refused the access token/], providerCode: 'InvalidAuthenticationToken' },
      expireTokens: async () => entra.revokeAll(),
    },
    unreachable: async () => fixture({ graphUrl: `https://127.0.0.1:${await portNobodyListensOn()}` }),
  };
});
