import type { SendMailOptions, SMTPPoolOptions, SMTPPoolSentMessageInfo, Transporter } from 'nodemailer';
import type { HostPort } from '../../config/cloud.js';
import { exchangeScope } from '../../config/cloud.js';
import type { Profile } from '../../config/profiles.js';
import { MailError } from '../../errors.js';
import { proxyUrlWithCredentials, type ProxyRoute, type ProxyRouter } from '../../network/proxy.js';
import { proxyMailError } from '../../network/proxyErrors.js';
import { toNodemailerOptions } from '../../mail/compose.js';
import type { OutgoingMessage } from '../../mail/outgoing.js';
import type { MailSender, SendOptions, SendResult, TransportDeps } from '../types.js';
import { smtpSecurity, type SmtpSecurity, smtpGreetingTimeoutMs } from './security.js';
import { TokenFailure, translateSmtpError } from './smtpErrors.js';
import { HANDOVER_OPTION, trackHandover, unknownOutcome, type Handover } from './smtpHandover.js';

/** Looks a Message-ID up in the mailbox's sent mail by another way than SMTP, which has none (IMAP). */
export type SentMailLookup = (messageId: string, options: { abortSignal?: AbortSignal }) => Promise<boolean>;

/**
 * Pool settings shared by the sender, the connection test and the benchmark's raw-nodemailer
 * baseline, for the profile's `smtpSecurity(profile)`. Exchange Online refuses a fourth
 * concurrent submission session per mailbox
 * ("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"), hence 3.
 *
 * Neither mode sends AUTH or mail in plain text (STARTTLS has only the greeting, EHLO and
 * STARTTLS itself before the handshake), and both verify the server's certificate (Node's trust store plus NODE_EXTRA_CA_CERTS). nodemailer's
 * own timeouts bound a mismatch: implicit TLS against a STARTTLS port fails at once (the
 * plain-text greeting is no TLS record), STARTTLS against an implicit-TLS port after
 * greetingTimeout (30 s: the server waits silently for a TLS handshake).
 */
export function smtpPoolOptions(endpoint: HostPort, security: SmtpSecurity, options: { greetingTimeoutMs?: number; proxy?: ProxyRoute } = {}): SMTPPoolOptions & { pool: true } {
  return {
    pool: true,
    host: endpoint.host,
    port: endpoint.port,
    // nodemailer's own HTTP CONNECT (its `proxy` option); the TLS of either mode runs inside the tunnel.
    ...(options.proxy !== undefined && { proxy: proxyUrlWithCredentials(options.proxy) }),
    greetingTimeout: options.greetingTimeoutMs ?? 30_000,
    // implicit (port 465): TLS from the first byte. starttls (port 587): plain connect, then
    // STARTTLS, which requireTLS makes mandatory; a server without STARTTLS fails with ETLS
    // instead of getting plain text.
    ...(security === 'implicit' ? { secure: true } : { secure: false, requireTLS: true }),
    // Authenticate even if the server does not advertise AUTH: never submit anonymously.
    forceAuth: true,
    maxConnections: 3,
    maxMessages: 100,
  };
}

/**
 * Sends through SMTP client submission with XOAUTH2, one nodemailer pool per profile, over
 * STARTTLS or implicit TLS as `smtpSecurity(profile)` says.
 *
 * Tokens come from the profile's TokenProvider through nodemailer's provisionCallback,
 * never from nodemailer's own refresh logic. The callback ignores nodemailer's `renew`
 * flag: renewal is `withAuthRetry`'s job (it re-reads the secret, then retries the send
 * once), so a refused token surfaces here as EAUTH with the server's reply instead of
 * being renewed twice. Exchange answers a refused XOAUTH2 token with a 535 directly.
 */
export class SmtpSender implements MailSender {
  readonly via = 'smtp' as const;
  private transport?: Promise<{ pool: Transporter<SMTPPoolSentMessageInfo>; proxy?: ProxyRoute }>;
  /** Present when the descriptor gave the sender a way to look in the mailbox's Sent folder (send.lookupSent). */
  readonly findSent?: (messageId: string, options?: { abortSignal?: AbortSignal }) => Promise<boolean>;

  constructor(
    private readonly profile: Profile,
    private readonly deps: TransportDeps,
    options: { lookupSent?: SentMailLookup } = {},
  ) {
    const lookup = options.lookupSent;
    if (lookup) this.findSent = (messageId, lookupOptions = {}) => lookup(messageId, lookupOptions);
  }

  /** The pool, made on first use once the proxy route (and so the proxy's password) is known. */
  private pool(): Promise<{ pool: Transporter<SMTPPoolSentMessageInfo>; proxy?: ProxyRoute }> {
    this.transport ??= this.createPool().catch((error: unknown) => {
      this.transport = undefined;
      throw error;
    });
    return this.transport;
  }

  private async createPool(): Promise<{ pool: Transporter<SMTPPoolSentMessageInfo>; proxy?: ProxyRoute }> {
    const proxy = await smtpProxyRoute(this.profile, this.deps.proxy);
    const nodemailer = require('nodemailer') as typeof import('nodemailer');
    const scope = exchangeScope(this.profile.endpoints);
    const pool = nodemailer.createTransport({
      ...smtpPoolOptions(this.profile.endpoints.smtp, smtpSecurity(this.profile), { greetingTimeoutMs: smtpGreetingTimeoutMs(this.profile), proxy }),
      auth: {
        type: 'OAuth2',
        user: this.profile.mailbox,
        provisionCallback: (_user, _renew, callback) => {
          this.deps.tokens.getToken(scope).then(
            (token) => callback(null, token),
            (error: unknown) => callback(new TokenFailure(error)),
          );
        },
      },
    });
    trackHandover(pool);
    return { pool, ...(proxy !== undefined && { proxy }) };
  }

  async send(message: OutgoingMessage, options: SendOptions = {}): Promise<SendResult> {
    options.abortSignal?.throwIfAborted();
    let info: SMTPPoolSentMessageInfo;
    let proxy: ProxyRoute | undefined;
    const handover: Handover = { complete: false };
    try {
      const made = await this.pool();
      proxy = made.proxy;
      // nodemailer composes the MIME; Bcc goes into the envelope only, never into a header.
      const mail: SendMailOptions & { [HANDOVER_OPTION]: Handover } = { ...toNodemailerOptions(message), signal: options.abortSignal, [HANDOVER_OPTION]: handover };
      info = await made.pool.sendMail(mail);
    } catch (error) {
      const unknown = unknownOutcome(this.profile, handover, error, options.abortSignal?.aborted === true);
      if (unknown) throw unknown;
      options.abortSignal?.throwIfAborted();
      throw smtpProxyError(this.profile, proxy, error) ?? translateSmtpError(this.profile, message, error);
    }
    if (info.rejected.length > 0) {
      // The server took the message for the other recipients; failing the send now would
      // invite a retry that delivers it twice.
      this.deps.logger.warn({ operation: 'send', profile: this.profile.name, via: this.via, outcome: 'ok', code: 'EREJECTED', rejectedRecipients: info.rejected.length });
    }
    return { messageId: message.messageId, providerId: queueId(info.response) };
  }

  async close(): Promise<void> {
    const made = this.transport;
    this.transport = undefined;
    (await made?.catch(() => undefined))?.pool.close();
  }
}

/** EPROXY when the connection went through a proxy that refused it or was not there (nodemailer says EPROXY, or a socket error on the proxy connection). */
export function smtpProxyError(profile: Profile, proxy: ProxyRoute | undefined, error: unknown): MailError | undefined {
  if (error instanceof TokenFailure) return undefined;
  return proxyMailError(error, { server: proxy?.server, target: profile.endpoints.smtp, profile: profile.name });
}

/** The route of the SMTP connection: the profile's proxy for its SMTP endpoint, or undefined for a direct one. */
export function smtpProxyRoute(profile: Profile, router: ProxyRouter | undefined): Promise<ProxyRoute | undefined> {
  return router?.route(profile.endpoints.smtp) ?? Promise.resolve(undefined);
}

/**
 * The server's id for the accepted message, from its 250 reply: Exchange Online answers
 * `250 2.0.0 OK <id> [Hostname=...]`, Postfix `250 2.0.0 Ok: queued as 4Fz...`, Exim `250 OK id=1a2b...`.
 */
export function queueId(response: string | undefined): string | undefined {
  if (!response) return undefined;
  const match = /queued as ([\w.-]+)/i.exec(response) ?? /\bid=([\w.-]+)/i.exec(response) ?? /<([^<>\s]+)>/.exec(response);
  return match?.[1];
}
