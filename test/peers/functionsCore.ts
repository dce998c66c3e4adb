import Module from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';

/**
 * A stand-in for `@azure/functions-core`, the module the Functions host injects into the
 * worker. Outside the host `@azure/functions` finds no such module and skips every
 * registration (src/utils/tryGetCoreApiLazy.ts); with this one installed first,
 * `app.http` / `app.timer` / `app.storageQueue` hand their metadata to `registerFunction`
 * exactly as they would in the host, and we record it.
 */
export interface CoreBinding {
  type: string;
  direction: 'in' | 'out';
  [setting: string]: unknown;
}

export interface RegisteredFunction {
  name: string;
  bindings: Record<string, CoreBinding>;
  handler: unknown;
}

interface CoreFunctionMetadata {
  name: string;
  bindings: Record<string, CoreBinding>;
}

interface ModuleInternals {
  _load(request: string, parent: unknown, isMain: boolean): unknown;
}

const CORE_MODULE = '@azure/functions-core';
const registered: RegisteredFunction[] = [];

/** An app hook (appStart, appTerminate, ...) as the host would call it, with a core context. */
export interface RegisteredHook {
  name: string;
  callback: (coreContext: unknown) => unknown;
}
const hooks: RegisteredHook[] = [];
let installed = false;

/** What `@azure/functions` hands the host: it answers the worker's capabilities (those `app.setup` set among them). */
export interface ProgrammingModel {
  getCapabilities(capabilities: Record<string, string>): Promise<Record<string, string>>;
}
let programmingModel: ProgrammingModel | undefined;

/** The capabilities the app reports to the host, as the host asks for them once the app has loaded. */
export function reportedCapabilities(): Promise<Record<string, string>> {
  if (!programmingModel) throw new Error('@azure/functions has not set its programming model');
  return programmingModel.getCapabilities({});
}

const fakeCore = {
  registerFunction(metadata: CoreFunctionMetadata, handler: unknown): { dispose(): void } {
    registered.push({ name: metadata.name, bindings: metadata.bindings, handler });
    return { dispose: () => {} };
  },
  setProgrammingModel(model: ProgrammingModel): void {
    programmingModel = model;
  },
  registerHook(name: string, callback: (coreContext: unknown) => unknown): { dispose(): void } {
    hooks.push({ name, callback });
    return { dispose: () => {} };
  },
  log(): void {},
};

/**
 * Makes `require('@azure/functions-core')` return the recorder. Must run before anything
 * in the process registers a function: `@azure/functions` looks the module up once and
 * keeps the answer.
 */
export function installFunctionsCore(): void {
  if (installed) return;
  installed = true;
  const internals = Module as unknown as ModuleInternals;
  const load = internals._load;
  internals._load = function (request, parent, isMain) {
    return request === CORE_MODULE ? fakeCore : load.call(this, request, parent, isMain);
  };
}

export function registeredFunctions(): readonly RegisteredFunction[] {
  return registered;
}

export function registeredHooks(): readonly RegisteredHook[] {
  return hooks;
}

/** The trigger binding of a registered function (the one binding whose type ends in Trigger). */
export function triggerOf(fn: RegisteredFunction): CoreBinding {
  const triggers = Object.values(fn.bindings).filter((b) => b.direction === 'in' && b.type.endsWith('Trigger'));
  if (triggers.length !== 1) throw new Error(`function ${fn.name} has ${triggers.length} trigger bindings`);
  return triggers[0]!;
}

/** The compiled function files the worker loads: package.json `main` (a glob such as dist/functions/*.js). */
export function functionEntryFiles(root: string): string[] {
  const { main } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { main: string };
  const dir = path.join(root, path.dirname(main));
  const pattern = new RegExp(`^${path.basename(main).split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*')}$`);
  return readdirSync(dir).filter((name) => pattern.test(name)).sort().map((name) => path.join(dir, name));
}
