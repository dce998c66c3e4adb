#!/usr/bin/env node
// Prints the shape of the app's own code, from its TypeScript sources: files and lines per part,
// the largest files, and the import cycles between files and between parts (type imports
// included). `node scripts/import-map.js [root]`; test/architecture/imports.test.ts holds the rules.
'use strict';
const { readdirSync, readFileSync, statSync } = require('node:fs');
const path = require('node:path');

const root = path.resolve(process.argv[2] ?? path.join(__dirname, '..'));
const SPECIFIER = /(?:\bfrom\s+|\brequire\(\s*|\bimport\(\s*)'(\.{1,2}\/[^']+)'/g;
const sources = (dir) => readdirSync(dir).flatMap((n) => {
  const f = path.join(dir, n);
  return statSync(f).isDirectory() ? sources(f) : n.endsWith('.ts') ? [f] : [];
});
const partOf = (file) => {
  const p = file.split(path.sep);
  if (p[0] !== 'shared') return p[0];
  return p.length > 2 ? `shared/${p[1]}` : file.replace(/\.ts$/, '');
};

const files = new Map();
for (const f of ['shared', 'functions', 'cli'].flatMap((p) => sources(path.join(root, p)))) {
  const text = readFileSync(f, 'utf8');
  const from = path.relative(root, f);
  const deps = new Set([...text.matchAll(SPECIFIER)].map((m) => path.relative(root, path.resolve(path.dirname(f), m[1].replace(/\.js$/, '.ts')))));
  files.set(from, { lines: text.split('\n').length - 1, deps });
}

function cycles(graph) {
  let index = 0;
  const stack = [], on = new Set(), idx = new Map(), low = new Map(), found = [];
  const visit = (v) => {
    idx.set(v, index); low.set(v, index++); stack.push(v); on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))); }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const c = []; let w;
      do { w = stack.pop(); on.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) found.push(c.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

const parts = new Map();
for (const [f, { lines, deps }] of files) {
  const p = partOf(f);
  const entry = parts.get(p) ?? { files: 0, lines: 0, deps: new Set() };
  entry.files++; entry.lines += lines;
  for (const d of deps) if (partOf(d) !== p) entry.deps.add(partOf(d));
  parts.set(p, entry);
}
console.log(`${root}: ${files.size} files, ${[...files.values()].reduce((s, f) => s + f.lines, 0)} lines`);
console.log('\npart                     files  lines');
for (const [p, e] of [...parts].sort()) console.log(`${p.padEnd(24)} ${String(e.files).padStart(5)} ${String(e.lines).padStart(6)}`);
console.log('\nlargest files');
for (const [f, e] of [...files].sort((a, b) => b[1].lines - a[1].lines).slice(0, 8)) console.log(`${String(e.lines).padStart(6)}  ${f}`);
const fileCycles = cycles(new Map([...files].map(([f, e]) => [f, e.deps])));
const partCycles = cycles(new Map([...parts].map(([p, e]) => [p, e.deps])));
console.log(`\nfile cycles: ${fileCycles.length === 0 ? 'none' : ''}`);
for (const c of fileCycles) console.log(`  ${c.join(' <-> ')}`);
console.log(`part cycles: ${partCycles.length === 0 ? 'none' : ''}`);
for (const c of partCycles) console.log(`  ${c.join(' <-> ')}`);
