import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { createLogger } from '../../shared/log.js';
import { MailRuntime } from '../../shared/runtime.js';
import { TokenEndpointPeer, tokenMailboxes } from '../peers/tokenEndpoint.js';
import { MailServers } from './mailServers.js';

export const MAILBOX = 'helpdesk@contoso.com';
const TENANT = 'contoso-tenant';

/**
 * What the SMTP round-trip suites share, registered on the enclosing describe: the token
 * endpoint, the real Postfix and Dovecot, and runtimes with one `helpdesk` profile (SMTP out,
 * IMAP in) whose app tokens Dovecot and Postfix accept for the mailbox.
 */
export class HelpdeskSystem {
  readonly entra = new TokenEndpointPeer();
  /** Every line the runtimes logged. */
  readonly logs: string[] = [];
  private mailServers?: MailServers;
  private readonly runtimes: MailRuntime[] = [];
  private readonly secret = `helpdesk-secret-${randomBytes(8).toString('hex')}`;

  constructor(private readonly clientId: string) {
    before(async () => {
      await this.entra.start();
      this.entra.register({ tenantId: TENANT, clientId, secret: this.secret });
      tokenMailboxes.set(clientId, MAILBOX);
      this.mailServers = await new MailServers({ introspectionUrl: this.entra.introspectionUrl, domains: ['contoso.com'] }).start();
    });
    after(async () => {
      tokenMailboxes.delete(clientId);
      await Promise.all(this.runtimes.map((r) => r.close()));
      await this.mailServers?.stop();
      await this.entra.stop();
    });
  }

  get servers(): MailServers {
    if (!this.mailServers) throw new Error('the mail servers start in the suite\'s before hook');
    return this.mailServers;
  }

  /** A runtime of its own, so its own SMTP pool (its first send authenticates afresh); `send` adds fields to the send section, `smtp` names the server (default: submission). */
  runtime(options: { smtp?: string; send?: Record<string, unknown> } = {}): MailRuntime {
    const profiles = {
      profiles: {
        helpdesk: {
          mailbox: MAILBOX,
          tenantId: TENANT,
          clientId: this.clientId,
          auth: { type: 'clientSecret', secret: 'helpdesk-client-secret' },
          send: { via: 'smtp', allowedFrom: [MAILBOX], ...options.send },
          receive: { via: 'imap', deliver: { queue: { name: 'mail-incoming' } } },
          endpoints: { authority: this.entra.url, smtp: options.smtp ?? this.servers.smtp, imap: this.servers.imap },
        },
      },
    };
    const line = (...args: unknown[]) => this.logs.push(args.map(String).join(' '));
    const r = new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), HELPDESK_CLIENT_SECRET: this.secret }, logger: createLogger({ log: line, warn: line, error: line }) });
    this.runtimes.push(r);
    return r;
  }
}
