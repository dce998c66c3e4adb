import type { Profile } from '../config/profiles.js';
import type { TransportSections } from '../config/schema.js';
import { MailError } from '../errors.js';
import type { ReceiveSide, SendSide, TransportDescriptor } from './descriptor.js';
import { file } from './file/index.js';
import { graph } from './graph/index.js';
import { imap } from './imap/index.js';
import { pop3 } from './pop3/index.js';
import { smtp } from './smtp/index.js';
import type { MailboxReader, MailboxSubscriptions, MailSender, TransportDeps } from './types.js';

/**
 * The one registry of transports. A profile's `send.via` and `receive.via` are looked up here
 * and nowhere else; adding a transport is a folder with its descriptor and a line in this list.
 */
export const TRANSPORTS: readonly TransportDescriptor[] = [graph, smtp, imap, pop3, file];

const byName = new Map(TRANSPORTS.map((t) => [t.name, t]));

/** The config sections the profiles document may use, for the profile schema. */
export function transportSections(): TransportSections {
  return {
    send: new Map(TRANSPORTS.flatMap((t) => (t.send ? [[t.name, t.send.config] as const] : []))),
    receive: new Map(TRANSPORTS.flatMap((t) => (t.receive ? [[t.name, t.receive.config] as const] : []))),
    remote: new Set(TRANSPORTS.filter((t) => t.remote).map((t) => t.name)),
    push: new Set(TRANSPORTS.filter((t) => t.receive?.subscriptions !== undefined).map((t) => t.name)),
  };
}

/** The sending side of the profile's transport; undefined when the profile does not send. */
export function sendTransport(profile: Profile): SendSide | undefined {
  return profile.send && side(profile.name, profile.send.via, 'send');
}

/** The receiving side of the profile's transport; undefined when the profile does not receive. */
export function receiveTransport(profile: Profile): ReceiveSide | undefined {
  return profile.receive && side(profile.name, profile.receive.via, 'receive');
}

/** Both sides the profile uses, sending first. */
export function transportSides(profile: Profile): Array<SendSide | ReceiveSide> {
  return [sendTransport(profile), receiveTransport(profile)].filter((s) => s !== undefined);
}

function side<K extends 'send' | 'receive'>(profile: string, via: string, kind: K): NonNullable<TransportDescriptor[K]> {
  const found = byName.get(via)?.[kind];
  // The profile schema admits only registered names: this is a profile built past it.
  if (!found) throw new MailError('ECONFIG', `profile "${profile}": ${kind}.via "${via}" is not a ${kind} transport`, { profile, field: `${kind}.via`, hint: `Use one of ${TRANSPORTS.filter((t) => t[kind]).map((t) => t.name).join(', ')}.` });
  return found as NonNullable<TransportDescriptor[K]>;
}

export function createSender(profile: Profile, deps: TransportDeps): MailSender {
  const send = sendTransport(profile);
  if (!send) throw new MailError('EINPUT', `profile "${profile.name}" has no send section`, { profile: profile.name, field: 'profile', hint: `Add profiles.${profile.name}.send to send from this mailbox.` });
  return send.create(profile, deps);
}

export function createReader(profile: Profile, deps: TransportDeps): MailboxReader {
  const receive = receiveTransport(profile);
  if (!receive) throw new MailError('EINPUT', `profile "${profile.name}" has no receive section`, { profile: profile.name, field: 'profile', hint: `Add profiles.${profile.name}.receive to poll this mailbox.` });
  return receive.create(profile, deps);
}

/** The subscriptions of a push profile (receive.push); EINPUT when its transport has none. */
export function createSubscriptions(profile: Profile, deps: TransportDeps): MailboxSubscriptions {
  const receive = receiveTransport(profile);
  if (!receive?.subscriptions) throw new MailError('EINPUT', `profile "${profile.name}" does not receive by push`, { profile: profile.name, field: 'receive.push', hint: 'Only receive.via "graph" profiles with receive.push: true have subscriptions.' });
  return receive.subscriptions(profile, deps);
}
