import path from 'node:path';
import type { ProfileSet } from '../config/profiles.js';

/** What GET /api/profiles and `m365-mail profiles` show of a profile: capabilities, never secrets nor their names. */
export interface ProfileSummary {
  name: string;
  mailbox: string;
  auth: string;
  cloud: string;
  send?: { via: string; allowedFrom: string[] };
  receive?: { via: string };
}

export interface ProfilesDescription {
  source: string;
  profiles: ProfileSummary[];
}

/**
 * Where the profiles came from, without the server's directory layout: `MAIL_PROFILES`,
 * `built-in`, or the profiles file's name.
 */
export function describeSource(set: ProfileSet): string {
  return path.isAbsolute(set.source) ? path.basename(set.source) : set.source;
}

export function describeProfiles(set: ProfileSet): ProfilesDescription {
  const profiles = [...set.profiles.values()].map((p): ProfileSummary => ({
    name: p.name,
    mailbox: p.mailbox,
    auth: p.auth.type,
    cloud: p.cloud,
    ...(p.send ? { send: { via: p.send.via, allowedFrom: p.allowedFrom } } : {}),
    ...(p.receive ? { receive: { via: p.receive.via } } : {}),
  }));
  return { source: describeSource(set), profiles };
}
