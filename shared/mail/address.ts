import addressparser from 'nodemailer/lib/addressparser';
import { z } from 'zod';

export interface Address {
  name?: string;
  address: string;
}

const emailCheck = z.email();

/** C0 controls and DEL, except TAB: no header carries them. */
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

/**
 * Why a display name cannot go out, if it cannot: one that carries an address (`CEO
 * <ceo@contoso.com>` on an allowed sender would show as the CEO in most clients), as text or as
 * an RFC 2047 encoded-word that decodes to one, or a control character.
 */
function displayNameProblem(name: string): string | undefined {
  if (CONTROL.test(name)) return 'a display name must not contain control characters';
  const decoded = /=\?[^?]+\?[bqBQ]\?/.test(name) ? (require('libmime') as typeof import('libmime')).decodeWords(name) : name;
  if (/[<>@]/.test(decoded)) return 'a display name must not carry an address (<, > or @)';
  return undefined;
}

/** `"Name <a@b.c>"`, `a@b.c`, or `{ name, address }`, parsed with nodemailer's addressparser. */
export function parseAddress(input: string | { name?: string; address: string }): Address | string {
  if (typeof input !== 'string') {
    if (/[\r\n]/.test(input.name ?? '') || /[\r\n]/.test(input.address)) return 'must not contain line breaks';
    if (!emailCheck.safeParse(input.address).success) return `"${input.address}" is not a valid e-mail address`;
    const problem = input.name ? displayNameProblem(input.name) : undefined;
    if (problem) return problem;
    return input.name ? { name: input.name, address: input.address } : { address: input.address };
  }
  if (/[\r\n]/.test(input)) return 'must not contain line breaks';
  const parsed = addressparser(input, { flatten: true });
  if (parsed.length !== 1) return `"${input}" must be exactly one address`;
  const one = parsed[0]!;
  if (!one.address || !emailCheck.safeParse(one.address).success) return `"${input}" is not a valid e-mail address`;
  const problem = one.name ? displayNameProblem(one.name) : undefined;
  if (problem) return problem;
  return one.name ? { name: one.name, address: one.address } : { address: one.address };
}

export function formatAddress(a: Address): string {
  return a.name ? `${JSON.stringify(a.name)} <${a.address}>` : a.address;
}

/** Does `address` match an allowedFrom entry (an address, or `*@domain`)? Case-insensitive. */
export function addressAllowed(address: string, allowed: readonly string[]): boolean {
  const lower = address.toLowerCase();
  const domain = lower.slice(lower.lastIndexOf('@') + 1);
  return allowed.some((entry) => entry === lower || entry === `*@${domain}`);
}
