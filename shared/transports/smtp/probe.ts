import { untilAborted } from '../../abort.js';
import type { Profile } from '../../config/profiles.js';
import type { ProxyRouter } from '../../network/proxy.js';
import { translateSmtpError } from './smtpErrors.js';
import { smtpSecurity, smtpGreetingTimeoutMs } from './security.js';
import { smtpPoolOptions, smtpProxyError, smtpProxyRoute } from './smtpSender.js';

/**
 * Connects to the profile's SMTP endpoint with the sender's own connection settings (its
 * smtpSecurity: STARTTLS required, or implicit TLS; AUTH forced), logs in with XOAUTH2 and
 * quits: nodemailer's `verify()` sends no MAIL FROM, so nothing is submitted. The token is the
 * one the token step obtained: Exchange answers a refused token with 535 at once, so there is
 * nothing to renew here.
 */
export async function verifySmtpLogin(profile: Profile, token: string, options: { abortSignal?: AbortSignal; proxy?: ProxyRouter }): Promise<void> {
  const nodemailer = require('nodemailer') as typeof import('nodemailer');
  const proxy = await smtpProxyRoute(profile, options.proxy);
  const transport = nodemailer.createTransport({
    ...smtpPoolOptions(profile.endpoints.smtp, smtpSecurity(profile), { greetingTimeoutMs: smtpGreetingTimeoutMs(profile), proxy }),
    auth: { type: 'OAuth2', user: profile.mailbox, accessToken: token },
  });
  try {
    // verify takes no AbortSignal: the diagnosis stops waiting when the signal fires, and the
    // abandoned connection ends on nodemailer's own timeouts.
    await untilAborted(transport.verify(), options.abortSignal);
  } catch (error) {
    options.abortSignal?.throwIfAborted();
    throw smtpProxyError(profile, proxy, error) ?? translateSmtpError(profile, undefined, error);
  } finally {
    transport.close();
  }
}
