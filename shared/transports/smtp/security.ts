import type { Profile } from '../../config/profiles.js';

/**
 * How a session with the SMTP server is encrypted. Neither is ever plain text:
 * - `implicit`: TLS from the first byte, as on port 465 ("SMTP (SSL)", RFC 8314 submissions);
 * - `starttls`: a plain connect, then STARTTLS, which is required before AUTH (port 587).
 */
export type SmtpSecurity = 'starttls' | 'implicit';

export const SMTP_SECURITY_MODES = ['starttls', 'implicit'] as const satisfies readonly SmtpSecurity[];

/** The port that gets implicit TLS when send.smtpSecurity is not set (RFC 8314 3.3). */
export const IMPLICIT_TLS_PORT = 465;

/** The SMTP transport's own field of the send section (shared/transports/smtp/index.ts declares it). */
export interface SmtpSendFields {
  smtpSecurity?: SmtpSecurity;
  greetingTimeoutSeconds?: number;
}

/** How long the server may take to greet: send.greetingTimeoutSeconds, else nodemailer's 30 s. */
export function smtpGreetingTimeoutMs(profile: Pick<Profile, 'send'>): number {
  return ((profile.send as SmtpSendFields | undefined)?.greetingTimeoutSeconds ?? 30) * 1000;
}

type SmtpProfile = Pick<Profile, 'send' | 'endpoints'>;

function configured(profile: SmtpProfile): SmtpSecurity | undefined {
  return (profile.send as SmtpSendFields | undefined)?.smtpSecurity;
}

/** The profile's SMTP security: send.smtpSecurity when set; otherwise implicit TLS on port 465 and STARTTLS on every other port. */
export function smtpSecurity(profile: SmtpProfile): SmtpSecurity {
  return configured(profile) ?? (profile.endpoints.smtp.port === IMPLICIT_TLS_PORT ? 'implicit' : 'starttls');
}

/** For hints: where the mode came from, `send.smtpSecurity is "implicit"` or `send.smtpSecurity is not set, so port 465 gets "implicit"`. */
export function describeSmtpSecurity(profile: SmtpProfile): string {
  const mode = smtpSecurity(profile);
  return configured(profile) === undefined ? `send.smtpSecurity is not set, so port ${profile.endpoints.smtp.port} gets "${mode}"` : `send.smtpSecurity is "${mode}"`;
}

/** For people: "STARTTLS" or "implicit TLS". */
export function smtpSecurityLabel(security: SmtpSecurity): string {
  return security === 'implicit' ? 'implicit TLS' : 'STARTTLS';
}
