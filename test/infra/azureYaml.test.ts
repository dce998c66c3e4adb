import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { bicepFile, params } from './bicepSource.js';

interface AzdService {
  project?: string;
  language?: string;
  host?: string;
  remoteBuild?: boolean;
  dist?: string;
  hooks?: { prepackage?: { posix?: { shell?: string; run?: string }; windows?: { shell?: string; run?: string } } };
}

function azureYaml(): { services?: Record<string, AzdService>; infra?: { path?: string; module?: string } } {
  return parse(readFileSync(path.join(APP_ROOT, 'azure.yaml'), 'utf8')) as ReturnType<typeof azureYaml>;
}

function functionService(): [string, AzdService] {
  const services = Object.entries(azureYaml().services ?? {}).filter(([, s]) => s.host === 'function');
  assert.equal(services.length, 1, `azure.yaml should name exactly one service with host: function, not ${services.length}`);
  return services[0]!;
}

/** The .funcignore lines that are patterns (gitignore syntax: no blank lines, no comments). */
function funcignorePatterns(): string[] {
  return readFileSync(path.join(APP_ROOT, '.funcignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

describe('azure.yaml: what `azd up` deploys', () => {
  it('names one function service, in TypeScript, whose project is the app root (host.json and package.json)', () => {
    const [, service] = functionService();
    assert.equal(service.language, 'ts');
    const project = path.resolve(APP_ROOT, service.project ?? '.');
    assert.ok(existsSync(path.join(project, 'host.json')), `${project} has no host.json`);
    assert.ok(existsSync(path.join(project, 'package.json')), `${project} has no package.json`);
  });

  it('names the service the Function App is tagged with (azd finds the app by its azd-service-name tag)', () => {
    const [name] = functionService();
    const serviceName = params(bicepFile('app/api.bicep')).find((p) => p.name === 'serviceName');
    assert.ok(serviceName, 'infra/app/api.bicep declares no serviceName param');
    assert.match(bicepFile('app/api.bicep'), new RegExp(`^param serviceName string = '${name}'$`, 'm'));
    assert.match(bicepFile('app/api.bicep'), /'azd-service-name': serviceName/);
  });

  it('uses infra/main.bicep, where azd looks when azure.yaml names no other', () => {
    const infra = azureYaml().infra;
    assert.equal(infra?.path ?? 'infra', 'infra');
    assert.equal(infra?.module ?? 'main', 'main');
    assert.ok(existsSync(path.join(APP_ROOT, 'infra', 'main.bicep')));
  });

  it('deploys the bundle: dist names the folder npm run bundle makes, which the prepackage hook builds, with no remote build', () => {
    const [, service] = functionService();
    assert.equal(service.dist, 'bundle');
    assert.equal(service.remoteBuild, false, 'remoteBuild: false (the package is built here, Azure runs no build)');
    const bundler = require(path.join(APP_ROOT, 'scripts', 'bundle.js')) as { bundle(options: { out: string }): Promise<unknown> };
    assert.equal(typeof bundler.bundle, 'function');
    const scripts = (JSON.parse(readFileSync(path.join(APP_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    assert.match(scripts.bundle ?? '', /^node scripts\/bundle\.js$/);
    for (const os of ['posix', 'windows'] as const) assert.equal(service.hooks?.prepackage?.[os]?.run, 'npm run bundle', `no ${os} prepackage hook running npm run bundle`);
  });

  it('has a .funcignore that agrees with remoteBuild: false (node_modules not left out) and leaves local state and tests out', () => {
    const patterns = funcignorePatterns();
    assert.ok(!patterns.includes('node_modules'), 'azd refuses remoteBuild: false with a .funcignore that leaves node_modules out');
    for (const local of ['local.settings.json', 'profiles.json', 'test']) assert.ok(patterns.includes(local), `.funcignore keeps ${local}`);
  });
});
