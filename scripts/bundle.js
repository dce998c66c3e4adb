#!/usr/bin/env node
// `npm run bundle [-- --out <folder>]`: the deployment package, by default in bundle/ (git ignores
// it). azure.yaml deploys that folder as it is, with no build in Azure:
//
//   host.json        the app's, unchanged
//   package.json     name, version, engines and "main": "main.js"; no dependencies
//   main.js (.map)   the functions' registrations (functions/*.ts, esbuild from the TypeScript
//                    sources), with @azure/functions-core left to the host, which injects it: what
//                    the host loads and waits for before it answers
//   app.js (.map)    the handlers (functions/handlers/*.ts), the start-up check and the OpenAPI
//                    builder with all they import: main.js requires it on the first invocation
//                    (functions/lazy.ts), so registering compiles none of the app
//   vendor/*.js      one file per package the app require()s on first use (the SDKs of the
//                    transports, secret stores, Storage and telemetry), each with its own
//                    dependencies: main.js requires it where the source does, so it is read and
//                    compiled only when a profile first needs it, as from node_modules
//
// Nothing else is read at run time: no package the app uses has a native part or a data file it
// opens by path (test/scripts/bundle.test.ts loads the package with no node_modules in reach and
// takes the lazy paths).
'use strict';
const { build } = require('esbuild');
const { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const root = path.resolve(__dirname, '..');

/** The module the Functions host provides to its worker; it is on no registry. */
const HOST_MODULE = '@azure/functions-core';

/** vendor/ file name of a package specifier: @azure/identity -> azure+identity.js, nodemailer/lib/mail-composer -> nodemailer+lib+mail-composer.js */
function vendorFile(specifier) {
  return `${specifier.replace(/^@/, '').replace(/\//g, '+')}.js`;
}

/**
 * zod's index exports its namespace as `z`: `import { z } from 'zod'` keeps that whole namespace,
 * the 60-odd locales among it, while `import * as z from 'zod'` lets esbuild keep only what is used
 * (zod's docs write it so). The two mean the same to the code that follows, so every source file
 * is bundled with the second.
 */
const ZOD_NAMED_IMPORT = /^import \{ z \} from 'zod';$/m;

/**
 * esbuild options shared by main.js and the vendor files: Node, CommonJS (what the worker
 * require()s), the oldest Node the engines field allows.
 */
function baseOptions() {
  const { engines } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const oldest = /(\d+\.\d+\.\d+)/.exec(engines.node)?.[1];
  if (!oldest) throw new Error(`package.json engines.node (${engines.node}) names no version`);
  return { bundle: true, platform: 'node', format: 'cjs', target: `node${oldest}`, logLevel: 'warning', legalComments: 'none', metafile: true };
}

/**
 * Builds the package into `out` (emptied first). Answers the vendor packages, the sizes of
 * main.js and the vendor folder, and main.js's esbuild metafile (test/scripts/bundle.test.ts reads
 * which inputs went into it).
 */
async function bundle({ out }) {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, 'vendor'), { recursive: true });
  const functions = readdirSync(path.join(root, 'functions')).filter((f) => f.endsWith('.ts')).sort();
  const handlers = readdirSync(path.join(root, 'functions', 'handlers')).filter((f) => f.endsWith('.ts')).sort();
  const functionsDir = path.join(root, 'functions');
  const lazy = new Set();
  const common = { ...baseOptions(), external: [HOST_MODULE], sourcemap: 'linked', sourcesContent: false };
  // What a registration file require()s on first call (its handler, the start-up check, the OpenAPI
  // builder) is app.js, which exports every one of them by name.
  const toApp = {
    name: 'app-on-first-call',
    setup(esbuild) {
      esbuild.onResolve({ filter: /^\.\.?\// }, (args) => {
        if (args.kind !== 'require-call' || path.dirname(args.importer) !== functionsDir) return undefined;
        return { path: './app.js', external: true };
      });
    },
  };
  const app = await build({
    ...common,
    stdin: {
      contents: [...handlers.map((f) => `export * from './functions/handlers/${f.replace(/\.ts$/, '.js')}';`), "export * from './shared/startup.js';", "export { buildOpenApiDocument } from './shared/openapi/document.js';"].join('\n'),
      resolveDir: root, sourcefile: 'app.ts', loader: 'ts',
    },
    outfile: path.join(out, 'app.js'),
    plugins: [lazyPackages(lazy)],
  });
  const main = await build({
    ...common,
    // The worker would load package.json main's files in this order: one import each, one bundle.
    stdin: { contents: functions.map((f) => `import './functions/${f.replace(/\.ts$/, '.js')}';`).join('\n'), resolveDir: root, sourcefile: 'main.ts', loader: 'ts' },
    outfile: path.join(out, 'main.js'),
    plugins: [toApp, lazyPackages(lazy)],
  });
  const packages = [...lazy].sort();
  await Promise.all(
    packages.map((specifier) =>
      build({ ...baseOptions(), metafile: false, stdin: { contents: `module.exports = require(${JSON.stringify(specifier)});`, resolveDir: root, sourcefile: specifier }, outfile: path.join(out, 'vendor', vendorFile(specifier)) }),
    ),
  );
  const manifestSource = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const manifest = { name: manifestSource.name, version: manifestSource.version, description: manifestSource.description, license: manifestSource.license, main: 'main.js', engines: manifestSource.engines };
  writeFileSync(path.join(out, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(path.join(out, 'host.json'), readFileSync(path.join(root, 'host.json')));
  return { packages, metafile: main.metafile, appMetafile: app.metafile };
}

/**
 * A package our own code require()s (never one it imports) is loaded on first use: it goes to
 * vendor/. And every source file is bundled with zod's namespace import (ZOD_NAMED_IMPORT).
 */
function lazyPackages(lazy) {
  return {
        name: 'lazy-packages',
        setup(esbuild) {
          esbuild.onResolve({ filter: /^[^./]/ }, (args) => {
            if (args.kind !== 'require-call' || args.path.startsWith('node:') || args.importer.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
            lazy.add(args.path);
            return { path: `./vendor/${vendorFile(args.path)}`, external: true };
          });
          esbuild.onLoad({ filter: /\.ts$/ }, (args) => {
            if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
            return { contents: readFileSync(args.path, 'utf8').replace(ZOD_NAMED_IMPORT, "import * as z from 'zod';"), loader: 'ts' };
          });
        },
  };
}

async function main() {
  const { values } = parseArgs({ options: { out: { type: 'string', default: path.join(root, 'bundle') } } });
  const out = path.resolve(values.out);
  const { packages } = await bundle({ out });
  const size = (file) => `${Math.round(readFileSync(file).length / 1024)} KiB`;
  console.log(`bundle: ${path.relative(process.cwd(), out) || '.'}/main.js ${size(path.join(out, 'main.js'))}, vendor/ ${packages.length} packages loaded on first use (${packages.join(', ')})`);
}

module.exports = { bundle, vendorFile };

if (require.main === module) {
  main().catch((error) => {
    console.error(`bundle: ${error.message}`);
    process.exitCode = 1;
  });
}
