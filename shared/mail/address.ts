import addressparser from 'nodemailer/lib/addressparser';
import { z } from 'zod';

export interface Address {
  name?: string;
  address: string;
}

const emailCheck = z.email();

/** `"Name <a@b.c>"`, `a@b.c`, or `{ name, address }`, parsed with nodemailer's addressparser. */
export function parseAddress(input: string | { name?: string; address: string }): Address | string {
  if (typeof input !== 'string') {
    if (/[\r\n]/.test(input.name ?? '') || /[\r\n]/.test(input.address)) return 'must not contain line breaks';
    if (!emailCheck.safeParse(input.address).success) return `"${input.address}" is not a valid e-mail address`;
    return input.name ? { name: input.name, address: input.address } : { address: input.address };
  }
  if (/[\r\n]/.test(input)) return 'must not contain line breaks';
  const parsed = addressparser(input, { flatten: true });
  if (parsed.length !== 1) return `"${input}" must be exactly one address`;
  const one = parsed[0]!;
  if (!one.address || !emailCheck.safeParse(one.address).success) return `"${input}" is not a valid e-mail address`;
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
