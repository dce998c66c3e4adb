import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseProfiles } from '../../shared/profiles/load.js';
import { MailError } from '../../shared/errors.js';
import type { OutgoingMessage } from '../../shared/mail/outgoing.js';
import { registerSensitive } from '../../shared/redact.js';
import { TokenFailure, translateSmtpError } from '../../shared/transports/smtp/smtpErrors.js';
import { queueId } from '../../shared/transports/smtp/smtpSender.js';

const profile = parseProfiles(
  { profiles: { support: { mailbox: 'support@contoso.com', tenantId: 't', clientId: 'c', auth: { type: 'clientSecret', secret: 's' }, send: { via: 'smtp' } } } },
  'test',
).profiles.get('support')!;

const message: OutgoingMessage = {
  from: { address: 'support@contoso.com' },
  to: [{ address: 'alice@example.com' }],
  cc: [],
  bcc: [{ address: 'hidden@example.com' }],
  replyTo: [],
  subject: 's',
  text: 't',
  importance: 'normal',
  headers: {},
  attachments: [],
  messageId: '<m@contoso.com>',
};

/** A nodemailer-shaped error as SMTPConnection._formatError builds it. */
function smtpError(code: string, response?: string, command?: string, extra: Record<string, unknown> = {}): Error {
  const responseCode = Number(/^\d{3}/.exec(response ?? '')?.[0]) || undefined;
  return Object.assign(new Error(`failed${response ? `: ${response}` : ''}`), { code, response, responseCode, command, ...extra });
}

const translate = (error: unknown) => translateSmtpError(profile, message, error);

describe('SMTP replies are translated into MailErrors with hints a person can act on', () => {
  const cases: Array<[string, Error, { code: string; providerCode?: string; field?: string; hint?: RegExp; retry?: boolean }]> = [
    ['535 5.7.139 SMTP AUTH disabled', smtpError('EAUTH', '535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.', 'AUTH XOAUTH2'), { code: 'EAUTH', providerCode: '5.7.139', hint: /Set-CASMailbox -SmtpClientAuthenticationDisabled \$false/ }],
    ['535 5.7.3 refused token', smtpError('EAUTH', '535 5.7.3 Authentication unsuccessful [BN9PR03CA0001.namprd03.prod.outlook.com]', 'AUTH XOAUTH2'), { code: 'EAUTH', providerCode: '5.7.3', hint: /SMTP\.SendAsApp.*New-ServicePrincipal.*Add-MailboxPermission/ }],
    ['535 5.7.8 bad credentials', smtpError('EAUTH', '535 5.7.8 Error: authentication failed', 'AUTH XOAUTH2'), { code: 'EAUTH', providerCode: '5.7.8', hint: /https:\/\/outlook\.office365\.com/ }],
    ['550 5.7.60 send as denied', smtpError('EENVELOPE', '550 5.7.60 SMTP; Client does not have permissions to send as this sender', 'MAIL FROM'), { code: 'ESEND_DENIED', field: 'from', hint: /Add-RecipientPermission/ }],
    ['554 5.2.0 STOREDRV SendAsDenied', smtpError('EMESSAGE', '554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message', 'DATA'), { code: 'ESEND_DENIED', field: 'from' }],
    ['554 5.2.0 STOREDRV other', smtpError('EMESSAGE', '554 5.2.0 STOREDRV.Submission.Exception:StoragePermanentException', 'DATA'), { code: 'EMAILBOX', hint: /licensed/ }],
    ['550 5.7.708 tenant blocked', smtpError('EENVELOPE', '550 5.7.708 Service unavailable. Access denied, traffic not accepted from this IP.', 'MAIL FROM'), { code: 'ESEND_DENIED', hint: /Restricted entities/ }],
    ['550 5.7.705 tenant over threshold', smtpError('EENVELOPE', '550 5.7.705 Access denied, tenant has exceeded threshold', 'MAIL FROM'), { code: 'ESEND_DENIED', hint: /outbound spam/ }],
    ['432 4.3.2 concurrency', smtpError('EENVELOPE', '432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded', 'MAIL FROM'), { code: 'ETHROTTLED', retry: true, hint: /3/ }],
    ['421 4.3.2 service not available', smtpError('EPROTOCOL', '421 4.3.2 Service not available', 'CONN'), { code: 'EUNAVAILABLE', retry: true }],
    ['552 message too large', smtpError('EMESSAGE', '552 5.3.4 Message size exceeds fixed maximum message size', 'DATA'), { code: 'ETOO_LARGE', field: 'attachments' }],
    ['STARTTLS failure', smtpError('ETLS', undefined, 'STARTTLS'), { code: 'ETLS', hint: /never sent in plain text/ }],
    ['connection refused', smtpError('ESOCKET', undefined, 'CONN', { originalCode: 'ECONNREFUSED' }), { code: 'ECONNECTION', retry: true, hint: /smtp\.office365\.com:587/ }],
    ['every recipient rejected', smtpError('EENVELOPE', '550 5.1.10 RESOLVER.ADR.RecipientNotFound', 'RCPT TO', { rejected: ['hidden@example.com'] }), { code: 'EREJECTED', field: 'bcc', providerCode: '5.1.10' }],
    ['recipient deferred', smtpError('EENVELOPE', '451 4.4.4 Temporary routing failure', 'RCPT TO', { rejected: ['alice@example.com'] }), { code: 'EUNAVAILABLE', retry: true }],
    ['unknown 5xx after DATA', smtpError('EMESSAGE', '554 5.6.0 Invalid message content', 'DATA'), { code: 'EREJECTED', providerCode: '5.6.0' }],
    ['protocol nonsense', smtpError('EPROTOCOL', '299 what', 'EHLO'), { code: 'EPROVIDER' }],
  ];
  for (const [name, error, expected] of cases) {
    it(`${name} -> ${expected.code}`, () => {
      const translated = translate(error);
      assert.equal(translated.code, expected.code);
      assert.equal(translated.profile, 'support');
      if (expected.providerCode) assert.equal(translated.providerCode, expected.providerCode);
      if (expected.field) assert.equal(translated.field, expected.field);
      if (expected.hint) assert.match(translated.hint ?? '', expected.hint);
      assert.equal(translated.retryAfter !== undefined, expected.retry ?? false);
      assert.ok(translated.hint, 'every translated error carries a hint');
    });
  }

  it("a token failure keeps the token provider's own MailError, which nodemailer would have relabelled EAUTH", () => {
    const original = new MailError('ETOKEN', 'token request failed: AADSTS7000215', { providerCode: 'AADSTS7000215' });
    const carrier = Object.assign(new TokenFailure(original), { code: 'EAUTH' });
    assert.equal(translate(carrier), original);
  });

  it("the server's reply passes redact before it reaches the message", () => {
    const token = 'tok-sensitive-value-in-a-reply';
    registerSensitive(token);
    const translated = translate(smtpError('EAUTH', `535 5.7.3 Authentication unsuccessful for ${token}`, 'AUTH XOAUTH2'));
    assert.ok(!translated.message.includes(token));
    assert.match(translated.message, /\[redacted\]/);
  });

  it('reads the queue id from Exchange, Postfix and Exim 250 replies', () => {
    assert.equal(queueId('250 2.0.0 OK <CY4PR0101MB1234.namprd01.prod.outlook.com> [Hostname=CY4PR0101MB1234]'), 'CY4PR0101MB1234.namprd01.prod.outlook.com');
    assert.equal(queueId('250 2.0.0 Ok: queued as 4FZ3xK2p9Bz1'), '4FZ3xK2p9Bz1');
    assert.equal(queueId('250 OK id=1kTw2E-0003Ab-Q1'), '1kTw2E-0003Ab-Q1');
    assert.equal(queueId('250 OK'), undefined);
  });
});
