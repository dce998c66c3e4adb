import type { TransportDescriptor } from '../descriptor.js';

/**
 * Microsoft Graph both ways. Application permissions: sendMail needs Mail.Send; reading MIME
 * needs Mail.Read; PATCH isRead, move and delete need Mail.ReadWrite
 * (https://learn.microsoft.com/graph/permissions-reference). A subscription to a folder's messages
 * (receive.push) needs the same Mail.Read (https://learn.microsoft.com/graph/api/subscription-post-subscriptions).
 */
export const graph: TransportDescriptor = {
  name: 'graph',
  remote: true,
  send: {
    config: { fields: {} },
    create(profile, deps) {
      const { GraphSender } = require('./graphSender.js') as typeof import('./graphSender.js');
      return new GraphSender(profile, deps);
    },
    permissions: (p) => [
      { api: 'graph', purpose: 'send through Graph', anyOf: ['Mail.Send'] },
      // A send whose outcome is unknown is looked up in Sent Items before it is sent again (docs/guarantees.md).
      ...(p.send?.saveToSentItems === false ? [] : [{ api: 'graph' as const, purpose: 'look a send whose outcome is unknown up in Sent Items (or send.unknownOutcome decides)', anyOf: ['Mail.ReadBasic', 'Mail.Read', 'Mail.ReadWrite'] }]),
    ],
    delegated: () => [{ api: 'graph', permission: 'Mail.Send' }],
    describe: (p) => `send via graph at ${p.endpoints.graph}`,
    probe(p, ctx) {
      const { probeGraphSend } = require('./probe.js') as typeof import('./probe.js');
      return probeGraphSend(p, ctx);
    },
  },
  receive: {
    config: { fields: {} },
    create(profile, deps) {
      const { GraphReader } = require('./graphReader.js') as typeof import('./graphReader.js');
      return new GraphReader(profile, deps);
    },
    permissions: (p) => [
      p.receive?.afterFetch === 'none' || p.receive === undefined
        ? { api: 'graph', purpose: 'read mail through Graph', anyOf: ['Mail.Read', 'Mail.ReadWrite'] }
        : { api: 'graph', purpose: `read mail through Graph and ${p.receive.afterFetch} it`, anyOf: ['Mail.ReadWrite'] },
    ],
    delegated: (p) => [{ api: 'graph', permission: p.receive?.afterFetch === 'none' ? 'Mail.Read' : 'Mail.ReadWrite' }],
    describe: (p) => `receive via graph at ${p.endpoints.graph}, folder ${p.receive?.folder}, afterFetch ${p.receive?.afterFetch}`,
    opened: (p) => `folder ${p.receive?.folder} of ${p.mailbox} over graph at ${p.endpoints.graph}`,
    subscriptions(profile, deps) {
      const { GraphSubscriptions } = require('./graphSubscriptions.js') as typeof import('./graphSubscriptions.js');
      return new GraphSubscriptions(profile, deps);
    },
  },
};
