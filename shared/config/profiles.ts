import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { MailError } from '../errors.js';
import { isPersonalTenant, resolveEndpoints, type CloudName, type Endpoints } from './cloud.js';
import { proxyServer, type ProxyServer } from '../network/proxy.js';
import { callerSchema, profileSchema, profilesDocumentSchema, type CallerConfig, type ParsedProfile, type TransportSections } from './schema.js';

export interface Profile extends Omit<ParsedProfile, 'cloud' | 'endpoints' | 'proxy'> {
  name: string;
  cloud: CloudName;
  endpoints: Endpoints;
  /** The profile's own outbound proxy (`proxy`), in place of HTTPS_PROXY for its connections. */
  proxy?: ProxyServer;
  /** Addresses and `*@domain` patterns this profile may send as. */
  allowedFrom: string[];
}

export interface Caller extends CallerConfig {
  name: string;
}

export interface ProfileSet {
  /** Where the profiles came from: 'MAIL_PROFILES', a file path, or 'built-in'. */
  source: string;
  profiles: ReadonlyMap<string, Profile>;
  /** The apps that may call this one; empty: every holder of the function key may use every profile (as before callers existed). */
  callers: ReadonlyMap<string, Caller>;
}

/**
 * The app root: the nearest folder above this code that holds a package.json. That is the
 * repository from dist/shared/config (or shared/config), and the package itself from the bundle
 * (npm run bundle), where this code is in main.js at the package's top.
 */
export const APP_ROOT = appRoot(__dirname);

function appRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no package.json above ${from}`);
  }
}

export const LOCAL_PROFILE_NAME = 'local';

function mailDir(env: NodeJS.ProcessEnv): string {
  return path.resolve(APP_ROOT, env.MAIL_DIR ?? '.mail');
}

/** The built-in profile that serves when nothing is configured: file transport both ways. */
function builtInDocument(env: NodeJS.ProcessEnv): unknown {
  const dir = mailDir(env);
  return {
    profiles: {
      [LOCAL_PROFILE_NAME]: {
        mailbox: 'local@localhost.localdomain',
        auth: { type: 'none' },
        send: { via: 'file', folder: path.join(dir, 'outbox'), allowedFrom: ['*@localhost.localdomain'] },
        receive: {
          via: 'file',
          folder: path.join(dir, 'inbox'),
          afterFetch: 'move',
          moveTo: path.join(dir, 'processed'),
          deliver: { queue: { name: 'mail-incoming' } },
        },
      },
    },
  };
}

function readDocument(env: NodeJS.ProcessEnv): { source: string; document: unknown } {
  const parse = (text: string, source: string): unknown => {
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new MailError('ECONFIG', `${source} is not valid JSON: ${(error as Error).message}`, {
        field: source,
        hint: 'Fix the JSON syntax of the profiles document.',
      });
    }
  };
  if (env.MAIL_PROFILES?.trim()) return { source: 'MAIL_PROFILES', document: parse(env.MAIL_PROFILES, 'MAIL_PROFILES') };
  const fileHint = 'Point MAIL_PROFILES_FILE at the profiles JSON file, relative to the app root or absolute.';
  if (env.MAIL_PROFILES_FILE?.trim()) {
    const file = path.resolve(APP_ROOT, env.MAIL_PROFILES_FILE);
    const text = readTextFile(file, { field: 'MAIL_PROFILES_FILE', hint: fileHint });
    if (text === undefined) throw new MailError('ECONFIG', `MAIL_PROFILES_FILE names ${file}, which does not exist`, { field: 'MAIL_PROFILES_FILE', hint: fileHint });
    return { source: file, document: parse(text, file) };
  }
  const rootFile = path.join(APP_ROOT, 'profiles.json');
  const text = readTextFile(rootFile, { field: 'profiles.json', hint: 'Make profiles.json at the app root a readable file, or remove it.' });
  if (text !== undefined) return { source: rootFile, document: parse(text, rootFile) };
  return { source: 'built-in', document: builtInDocument(env) };
}

/** The file's text, or undefined when there is no such file; ECONFIG naming `field` when it cannot be read (a folder, no permission). */
function readTextFile(file: string, options: { field: string; hint: string }): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new MailError('ECONFIG', `${file} cannot be read (${code ?? 'unknown error'})`, { ...options, cause: error });
  }
}

/** The dotted path of an issue; for an unknown key, the key itself (zod reports it on the parent object). */
function issueField(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) path.push(issue.keys[0]);
  return path.join('.');
}

function describeIssues(profile: string, issues: z.core.$ZodIssue[]): MailError {
  const field = issueField(issues[0]!);
  const all = issues.map((i) => `${issueField(i) || '(profile)'} ${i.message}`).join('; ');
  return new MailError('ECONFIG', `profile "${profile}": ${all}`, {
    profile,
    field: field || undefined,
    hint: `Correct profiles.${profile}.${field || '<field>'} in the profiles document.`,
  });
}

/**
 * Parses and validates a profiles document for the given transports (the registry in
 * shared/transports, which shared/profiles binds). Throws ECONFIG naming the profile and field.
 */
export function parseProfilesDocument(document: unknown, source: string, transports: TransportSections): ProfileSet {
  const top = profilesDocumentSchema.safeParse(document);
  if (!top.success) {
    const issue = top.error.issues[0]!;
    const field = issueField(issue);
    throw new MailError('ECONFIG', `${source}: ${field || '(document)'} ${issue.message}; expected { "profiles": { "<name>": { ... } } }`, {
      field: field || 'profiles',
      hint: issue.code === 'invalid_key' ? 'Profile names are 1-64 letters, digits, dashes or underscores.' : 'The document is one object: { "profiles": { "<name>": { ... } } }.',
    });
  }
  const profiles = new Map<string, Profile>();
  const schema = profileSchema(transports);
  for (const [name, raw] of Object.entries(top.data.profiles)) {
    const parsed = schema.safeParse(raw);
    if (!parsed.success) throw describeIssues(name, parsed.error.issues);
    const p = parsed.data;
    const { proxy, ...rest } = p;
    profiles.set(name, {
      ...rest,
      name,
      cloud: p.cloud as CloudName,
      endpoints: resolveEndpoints(p.cloud as CloudName, p.endpoints, { personal: isPersonalTenant(p.tenantId) }),
      ...(proxy !== undefined && { proxy: typeof proxy === 'string' ? proxyServer(proxy, `profiles.${name}.proxy`) : proxyServer(proxy.url, `profiles.${name}.proxy`, proxy.passwordSecret) }),
      allowedFrom: (p.send?.allowedFrom ?? [p.mailbox]).map((a) => a.toLowerCase()),
    });
  }
  if (profiles.size === 0) {
    throw new MailError('ECONFIG', `${source}: no profiles defined`, { field: 'profiles', hint: 'Define at least one profile, or remove the setting to use the built-in local profile.' });
  }
  return { source, profiles, callers: parseCallers(top.data.callers ?? {}, profiles) };
}

function parseCallers(raw: Record<string, unknown>, profiles: ReadonlyMap<string, Profile>): Map<string, Caller> {
  const callers = new Map<string, Caller>();
  const fail = (name: string, field: string, message: string) =>
    new MailError('ECONFIG', `caller "${name}": ${field || '(caller)'} ${message}`, { field: `callers.${name}${field ? `.${field}` : ''}`, hint: `Correct callers.${name}${field ? `.${field}` : ''} in the profiles document.` });
  for (const [name, value] of Object.entries(raw)) {
    const parsed = callerSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw fail(name, issueField(issue), issue.message);
    }
    parsed.data.profiles.forEach((p, i) => {
      if (!profiles.has(p)) throw fail(name, `profiles.${i}`, `names "${p}", which is not a configured profile`);
    });
    callers.set(name, { ...parsed.data, name, ...(parsed.data.allowedFrom && { allowedFrom: parsed.data.allowedFrom.map((a) => a.toLowerCase()) }) });
  }
  return callers;
}

/** Reads the profiles from MAIL_PROFILES, MAIL_PROFILES_FILE, profiles.json, or the built-in default. */
export function loadProfilesDocument(env: NodeJS.ProcessEnv, transports: TransportSections): ProfileSet {
  const { source, document } = readDocument(env);
  return parseProfilesDocument(document, source, transports);
}
