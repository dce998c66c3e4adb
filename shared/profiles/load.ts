import { loadProfilesDocument, parseProfilesDocument, type ProfileSet } from '../config/profiles.js';
import type { TransportSections } from '../config/schema.js';
import { transportSections } from '../transports/index.js';

let sections: TransportSections | undefined;

/** Parses and validates a profiles document against the registered transports. Throws ECONFIG naming the profile and field. */
export function parseProfiles(document: unknown, source: string): ProfileSet {
  sections ??= transportSections();
  return parseProfilesDocument(document, source, sections);
}

/** Reads the profiles from MAIL_PROFILES, MAIL_PROFILES_FILE, profiles.json, or the built-in default. */
export function loadProfiles(env: NodeJS.ProcessEnv = process.env): ProfileSet {
  sections ??= transportSections();
  return loadProfilesDocument(env, sections);
}
