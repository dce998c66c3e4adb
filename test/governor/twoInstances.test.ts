import assert from 'node:assert/strict';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, before, beforeEach, describe, it } from 'node:test';
import { AzuritePeer } from '../peers/azurite.js';
import { GraphPeer } from '../peers/graphPeer.js';
import { TokenEndpointPeer } from '../peers/tokenEndpoint.js';
import { composeEml } from '../support/receiveHarness.js';
import { runNode } from '../support/runNode.js';

const MAILBOX = 'shared@contoso.com';
const APP = { tenantId: 'contoso-tenant', clientId: 'busy-app', secret: `busy-secret-${randomUUID()}` };
const ROOT = path.resolve(__dirname, '../../..');
const INSTANCE = path.join(__dirname, '../support/governedInstance.js');

interface InstanceReport {
  sent: number;
  failures: string[];
  polls: string[];
}

/**
 * Two app processes, each polling the mailbox and sending from it with 8 sends in flight, against
 * a Graph stand-in that answers 429 MailboxConcurrency above 4 requests in flight for the mailbox
 * and holds each answer 100 ms, so that without a shared limit the two together exceed it.
 */
describe('two instances polling and sending for one mailbox stay within Graph\'s 4 concurrent requests (shared/governor)', () => {
  const azurite = new AzuritePeer();
  const entra = new TokenEndpointPeer();
  const graph = new GraphPeer(entra);

  before(async () => {
    await Promise.all([azurite.start(), entra.start(), graph.start()]);
    entra.register({ ...APP });
    graph.addMailbox(MAILBOX);
    graph.concurrencyLimit = 4;
    graph.answerDelayMs = 100;
  });
  after(() => Promise.all([azurite.stop(), entra.stop(), graph.stop()]));

  beforeEach(async () => {
    graph.requests.splice(0);
    graph.sent.splice(0);
    graph.maxInFlight.clear();
    for (let n = 0; n < 6; n++) {
      graph.mail.addMessage(MAILBOX, 'inbox', await composeEml({ from: `user${n}@fabrikam.com`, to: MAILBOX, subject: `Request ${n}`, text: 'Help.', messageId: `<${randomUUID()}@fabrikam.com>` }));
    }
  });

  function instances(governor: boolean, tag: string): Promise<InstanceReport[]> {
    const profile = {
      mailbox: MAILBOX,
      tenantId: APP.tenantId,
      clientId: APP.clientId,
      auth: { type: 'clientSecret', secret: 'busy-app-secret' },
      graph: { governor },
      send: { via: 'graph', ratePerMinute: 6000 },
      receive: { via: 'graph', afterFetch: 'markRead', deliver: { queue: { name: 'mail-incoming' } } },
      endpoints: { authority: entra.url, graph: graph.url },
    };
    const run = (n: number) => runNode([INSTANCE], {
      cwd: ROOT,
      env: {
        ...process.env,
        AzureWebJobsStorage: azurite.connectionString,
        MAIL_PROFILES: JSON.stringify({ profiles: { graph: profile } }),
        BUSY_APP_SECRET: APP.secret,
        GOVERNED_INSTANCE: JSON.stringify({ tag: `${tag}-${n}`, sends: 16, concurrency: 8, polls: 3 }),
      },
    }).then((result) => {
      assert.equal(result.code, 0, result.stderr);
      return JSON.parse(result.stdout.trim().split('\n').at(-1)!) as InstanceReport;
    });
    return Promise.all([run(1), run(2)]);
  }

  const throttled = () => graph.requests.filter((r) => r.status === 429);

  it('governed: Graph answers no 429, never sees more than 4 requests in flight, and every send and poll succeeds', async () => {
    const reports = await instances(true, 'governed');
    assert.deepEqual(reports.map((r) => r.failures), [[], []]);
    assert.deepEqual(reports.map((r) => r.sent), [16, 16]);
    assert.equal(graph.sent.length, 32);
    assert.ok(reports.every((r) => r.polls.length === 3 && r.polls.every((s) => s === 'completed' || s === 'leased')), JSON.stringify(reports));
    assert.ok(reports.some((r) => r.polls.includes('completed')));
    assert.deepEqual(throttled().map((r) => r.errorCode), []);
    const inFlight = graph.maxInFlight.get(MAILBOX) ?? 0;
    assert.ok(inFlight <= 4, `${inFlight} requests were in flight at once`);
    // The load did press against the limit: the governor had something to do.
    assert.equal(inFlight, 4);
  });

  it('the same load ungoverned (graph.governor false) meets MailboxConcurrency: the stand-in\'s limit is real and the test above can fail', async () => {
    await instances(false, 'ungoverned');
    assert.ok(throttled().length > 0, 'no 429 without the governor');
    assert.ok(throttled().every((r) => r.errorCode === 'ApplicationThrottled'));
    assert.ok((graph.maxInFlight.get(MAILBOX) ?? 0) > 4);
  });
});
