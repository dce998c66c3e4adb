import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { APP_ROOT } from '../../shared/config/profiles.js';

/**
 * Just enough of Bicep's syntax to check infra/ offline, where no Bicep compiler can be
 * installed: comments, strings (with `${...}` interpolation and '''multi-line''' ones), balanced
 * brackets, object literal entries, `param` / `var` / `module` / `output` declarations. It reads
 * the files as written in infra/, not Bicep in general: a construct it does not know makes the
 * tests that use it fail rather than pass.
 */

export const INFRA_DIR = path.join(APP_ROOT, 'infra');

/** Every .bicep file under infra/, by its path relative to infra/ (with /), comments blanked. */
export function bicepFiles(): Map<string, string> {
  const files = new Map<string, string>();
  (function walk(dir: string) {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.bicep')) files.set(path.relative(INFRA_DIR, full).split(path.sep).join('/'), withoutComments(readFileSync(full, 'utf8')));
    }
  })(INFRA_DIR);
  return files;
}

export function bicepFile(relative: string): string {
  return withoutComments(readFileSync(path.join(INFRA_DIR, relative), 'utf8'));
}

/** The index just past the string literal that starts at `start` (a quote). */
function skipString(text: string, start: number): number {
  if (text.startsWith("'''", start)) {
    const end = text.indexOf("'''", start + 3);
    if (end < 0) throw new Error(`unterminated multi-line string at ${start}`);
    return end + 3;
  }
  let i = start + 1;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === "'") return i + 1;
    else if (text.startsWith('${', i)) i = skipInterpolation(text, i + 2);
    else i += 1;
  }
  throw new Error(`unterminated string at ${start}`);
}

function skipInterpolation(text: string, start: number): number {
  let depth = 1;
  let i = start;
  while (i < text.length) {
    const c = text[i];
    if (c === "'") {
      i = skipString(text, i);
      continue;
    }
    if (c === '{') depth += 1;
    if (c === '}' && --depth === 0) return i + 1;
    i += 1;
  }
  throw new Error(`unterminated interpolation at ${start}`);
}

/** Comments replaced by spaces (newlines kept, so line numbers and layout stay); strings untouched. */
export function withoutComments(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] === "'") {
      const end = skipString(text, i);
      out += text.slice(i, end);
      i = end;
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`unterminated comment at ${i}`);
      out += text.slice(i, end + 2).replace(/[^\n]/g, ' ');
      i = end + 2;
    } else {
      out += text[i];
      i += 1;
    }
  }
  return out;
}

const OPENERS: Record<string, string> = { '{': '}', '[': ']', '(': ')' };

/** The bracketed text that opens at `start` (`{`, `[` or `(`), brackets included. */
export function balanced(text: string, start: number): string {
  const stack: string[] = [];
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'") {
      i = skipString(text, i);
      continue;
    }
    if (OPENERS[c]) stack.push(OPENERS[c]);
    else if (c === '}' || c === ']' || c === ')') {
      if (stack.pop() !== c) throw new Error(`unbalanced ${c} at ${i}`);
      if (stack.length === 0) return text.slice(start, i + 1);
    }
    i += 1;
  }
  throw new Error(`unclosed ${text[start]} at ${start}`);
}

export interface ObjectEntry {
  key: string;
  /** The value's text, trimmed. */
  value: string;
}

/**
 * The entries at the top level of an object literal (`{` ... `}`): Bicep puts one per line,
 * `key: value`, where key is an identifier or a quoted string.
 */
export function objectEntries(literal: string): ObjectEntry[] {
  if (!literal.startsWith('{') || !literal.endsWith('}')) throw new Error(`not an object literal: ${literal.slice(0, 40)}`);
  const body = literal.slice(1, -1);
  const entries: ObjectEntry[] = [];
  let i = 0;
  while (i < body.length) {
    while (i < body.length && /[\s,]/.test(body[i]!)) i += 1;
    if (i >= body.length) break;
    let key: string;
    if (body[i] === "'") {
      const end = skipString(body, i);
      key = body.slice(i + 1, end - 1);
      i = end;
    } else {
      const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(body.slice(i));
      if (!match) throw new Error(`no key at: ${body.slice(i, i + 40)}`);
      key = match[0];
      i += key.length;
    }
    while (body[i] === ' ') i += 1;
    if (body[i] !== ':') throw new Error(`expected ':' after ${key}`);
    i += 1;
    const start = i;
    // The value runs to the end of its line, or further while brackets are open.
    while (i < body.length && body[i] !== '\n') {
      const c = body[i]!;
      if (c === "'") i = skipString(body, i);
      else if (OPENERS[c]) i += balanced(body, i).length;
      else i += 1;
    }
    entries.push({ key, value: body.slice(start, i).trim() });
  }
  return entries;
}

/** The object literals an expression holds at its top level (`cond ? { ... } : {}` holds two). */
export function objectLiterals(expression: string): string[] {
  const literals: string[] = [];
  let i = 0;
  while (i < expression.length) {
    const c = expression[i]!;
    if (c === "'") i = skipString(expression, i);
    else if (c === '{') {
      const literal = balanced(expression, i);
      literals.push(literal);
      i += literal.length;
    } else if (c === '(' || c === '[') i += balanced(expression, i).length;
    else i += 1;
  }
  return literals;
}

const DECLARATION = /^(?:@|targetScope\b|param\b|var\b|resource\b|module\b|output\b|type\b|func\b|import\b|metadata\b)/;

/** The text of a top-level declaration's right-hand side, from after `=` to where the next declaration starts. */
function declarationBody(text: string, headerEnd: number): string {
  let i = headerEnd;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'") i = skipString(text, i);
    else if (OPENERS[c]) i += balanced(text, i).length;
    else if (c === '\n' && DECLARATION.test(text.slice(i + 1))) break;
    else i += 1;
  }
  return text.slice(headerEnd, i).trim();
}

/** `var name = <expression>`: the expression, or undefined when there is no such variable. */
export function variable(text: string, name: string): string | undefined {
  const match = new RegExp(`^var\\s+${name}\\s*=`, 'm').exec(text);
  return match ? declarationBody(text, match.index + match[0].length) : undefined;
}

export function variableNames(text: string): string[] {
  return [...text.matchAll(/^var\s+([A-Za-z_][A-Za-z0-9_]*)\s*=/gm)].map((m) => m[1]!);
}

export interface BicepParam {
  name: string;
  type: string;
  /** `= value` given, or the type is nullable (`string?`): a caller may leave it out. */
  optional: boolean;
  /** The values of an `@allowed([...])` decorator, as written ('20' is "20", 512 is "512"). */
  allowed?: string[];
}

export function params(text: string): BicepParam[] {
  const found: BicepParam[] = [];
  const decorators: string[] = [];
  for (const match of text.matchAll(/^(@allowed\(|param\s+([A-Za-z_][A-Za-z0-9_]*)\s+([A-Za-z_][A-Za-z0-9_.]*\??)(\s*=)?)/gm)) {
    if (match[1]!.startsWith('@allowed(')) {
      decorators.push(balanced(text, match.index + '@allowed'.length));
      continue;
    }
    const allowedText = decorators.pop();
    decorators.length = 0;
    const allowed = allowedText === undefined
      ? undefined
      : [...allowedText.slice(1, -1).matchAll(/'([^']*)'|(-?\d+)|\b(true|false)\b/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
    found.push({ name: match[2]!, type: match[3]!.replace(/\?$/, ''), optional: match[4] !== undefined || match[3]!.endsWith('?'), ...(allowed && { allowed }) });
  }
  return found;
}

export function outputNames(text: string): string[] {
  return [...text.matchAll(/^output\s+([A-Za-z_][A-Za-z0-9_]*)\s/gm)].map((m) => m[1]!);
}

export interface ModuleUse {
  symbol: string;
  /** As written: a relative .bicep path or a registry reference (br/public:...). */
  source: string;
  /** The keys of its `params` object. */
  params: string[];
}

export function modules(text: string): ModuleUse[] {
  const uses: ModuleUse[] = [];
  for (const match of text.matchAll(/^module\s+([A-Za-z_][A-Za-z0-9_]*)\s+'([^']+)'\s*=/gm)) {
    const body = declarationBody(text, match.index + match[0].length);
    const bodyStart = body.indexOf('{');
    const block = bodyStart < 0 ? '' : balanced(body, bodyStart);
    const paramsEntry = block === '' ? undefined : objectEntries(block).find((e) => e.key === 'params');
    uses.push({ symbol: match[1]!, source: match[2]!, params: paramsEntry ? objectEntries(paramsEntry.value).map((e) => e.key) : [] });
  }
  return uses;
}
