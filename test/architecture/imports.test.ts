import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';

/**
 * The import graph of the app's own code (shared/, functions/, cli/), type imports included, read
 * from the TypeScript sources. dependency-cruiser and dpdm would do this, but they need the
 * TypeScript compiler's JS API, which TypeScript 7 (native) does not ship; the relative
 * specifiers of `import ... from`, `export ... from` and `require()` are all this code uses.
 */
const ROOT = path.resolve(__dirname, '../../..');
const PARTS = ['shared', 'functions', 'cli'];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return sources(full);
    return name.endsWith('.ts') ? [full] : [];
  });
}

const SPECIFIER = /(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)'(\.{1,2}\/[^']+)'/g;

function importGraph(): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const file of PARTS.flatMap((p) => sources(path.join(ROOT, p)))) {
    const from = path.relative(ROOT, file);
    const deps = new Set<string>();
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      deps.add(path.relative(ROOT, path.resolve(path.dirname(file), spec!.replace(/\.js$/, '.ts'))));
    }
    graph.set(from, deps);
  }
  return graph;
}

/** The part a file belongs to: its folder under shared/ (a top-level file of shared/ is a part of its own), functions or cli. */
export function folderOf(file: string): string {
  const parts = file.split(path.sep);
  if (parts[0] !== 'shared') return parts[0]!;
  return parts.length > 2 ? `shared/${parts[1]}` : file.replace(/\.ts$/, '');
}

/** Every cycle's members (Tarjan's strongly connected components of more than one node, or a self-loop). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const stack: string[] = [];
  const on = new Set<string>();
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

/**
 * Which part may import which: docs/architecture.md explains the layers. Anything not listed
 * here is refused, so a new dependency between parts is a decision made in this table and that
 * document, not an accident. The foundations (errors, redact, log, abort, network, telemetry, text) may be used by all.
 */
const FOUNDATIONS = ['shared/errors', 'shared/redact', 'shared/log', 'shared/abort', 'shared/network', 'shared/telemetry', 'shared/text'];
const ALLOWED: Record<string, string[]> = {
  'shared/errors': [],
  'shared/redact': [],
  'shared/log': ['shared/redact'],
  'shared/abort': [],
  'shared/text': [],
  'shared/network': ['shared/errors', 'shared/redact'],
  'shared/telemetry': ['shared/errors', 'shared/log'],
  'shared/config': [],
  'shared/state': ['shared/config'],
  'shared/secrets': ['shared/config'],
  'shared/identity': ['shared/config', 'shared/secrets'],
  'shared/mail': ['shared/config'],
  'shared/transports': ['shared/config', 'shared/identity', 'shared/mail'],
  'shared/sinks': ['shared/config', 'shared/mail', 'shared/secrets', 'shared/state'],
  'shared/profiles': ['shared/config', 'shared/transports'],
  'shared/http': [],
  'shared/governor': ['shared/config', 'shared/state', 'shared/transports'],
  'shared/runtime': ['shared/config', 'shared/governor', 'shared/identity', 'shared/profiles', 'shared/secrets', 'shared/sinks', 'shared/state', 'shared/transports'],
  'shared/callers': ['shared/config', 'shared/mail', 'shared/runtime'],
  'shared/send': ['shared/callers', 'shared/config', 'shared/governor', 'shared/identity', 'shared/mail', 'shared/runtime', 'shared/state'],
  'shared/receive': ['shared/config', 'shared/identity', 'shared/mail', 'shared/runtime', 'shared/sinks', 'shared/state', 'shared/transports'],
  'shared/consent': ['shared/identity', 'shared/runtime', 'shared/transports'],
  'shared/diagnose': ['shared/config', 'shared/identity', 'shared/runtime', 'shared/send', 'shared/transports'],
  'shared/health': ['shared/config', 'shared/governor', 'shared/http', 'shared/identity', 'shared/profiles', 'shared/receive', 'shared/runtime', 'shared/state'],
  'shared/startup': ['shared/runtime'],
  'shared/openapi': ['shared/callers', 'shared/config', 'shared/diagnose', 'shared/health', 'shared/http', 'shared/identity', 'shared/mail', 'shared/profiles', 'shared/receive', 'shared/send', 'shared/state'],
};

describe('the import graph', () => {
  const graph = importGraph();

  it('reads the whole app: every relative import resolves to a source file', () => {
    assert.ok(graph.size > 50, `only ${graph.size} files found`);
    const missing = [...graph].flatMap(([from, deps]) => [...deps].filter((d) => !graph.has(d)).map((d) => `${from} -> ${d}`));
    assert.deepEqual(missing, []);
  });

  it('has no import cycle between files', () => {
    assert.deepEqual(cycles(graph), []);
  });

  it('has no two folders that import each other, directly or through others', () => {
    const folders = new Map<string, Set<string>>();
    for (const [from, deps] of graph) {
      const a = folderOf(from);
      const set = folders.get(a) ?? new Set<string>();
      folders.set(a, set);
      for (const d of deps) if (folderOf(d) !== a) set.add(folderOf(d));
    }
    assert.deepEqual(cycles(folders), []);
  });

  it('each part imports only the parts docs/architecture.md allows it (functions/ and cli/ may use any)', () => {
    const refused: string[] = [];
    for (const [from, deps] of graph) {
      const a = folderOf(from);
      if (a === 'functions' || a === 'cli') continue;
      const allowed = ALLOWED[a];
      if (allowed === undefined) {
        refused.push(`${a} is a part the table does not know (${from})`);
        continue;
      }
      for (const d of deps) {
        const b = folderOf(d);
        if (b !== a && !FOUNDATIONS.includes(b) && !allowed.includes(b)) refused.push(`${from} -> ${d}`);
      }
    }
    assert.deepEqual(refused, []);
  });

  it('finds a cycle when there is one (the check itself can fail)', () => {
    const made = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a'])], ['d', new Set(['a'])]]);
    assert.deepEqual(cycles(made), [['a', 'b', 'c']]);
  });
});
