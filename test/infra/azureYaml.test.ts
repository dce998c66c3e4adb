import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
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

  it('deploys what `npm run build` makes: package.json main names dist/functions, where every function is compiled', () => {
    const [, service] = functionService();
    const project = path.resolve(APP_ROOT, service.project ?? '.');
    const main = (JSON.parse(readFileSync(path.join(project, 'package.json'), 'utf8')) as { main?: string }).main;
    assert.equal(main, 'dist/functions/*.js');
    const sources = readdirSync(path.join(project, 'functions')).filter((f) => f.endsWith('.ts'));
    assert.ok(sources.length > 0);
    for (const source of sources) {
      const compiled = path.join(project, 'dist', 'functions', source.replace(/\.ts$/, '.js'));
      assert.ok(existsSync(compiled), `npm run build made no ${compiled}`);
    }
  });

  it('builds remotely, so the package leaves node_modules out and keeps what the remote build needs', () => {
    const [, service] = functionService();
    assert.equal(service.remoteBuild, true, 'remoteBuild: true (the remote build installs the dependencies on Linux)');
    assert.equal(service.dist, undefined, 'with a remote build the package is the project folder, not a dist folder');
    const patterns = funcignorePatterns();
    assert.ok(patterns.includes('node_modules'), '.funcignore must leave node_modules out of the package');
    for (const needed of ['host.json', 'package.json', 'package-lock.json', 'tsconfig.json', 'functions', 'shared', 'cli']) {
      const excluding = patterns.filter((p) => p === '*' || p === '/*' || p.replace(/^\//, '').replace(/\/$/, '') === needed);
      assert.deepEqual(excluding, [], `.funcignore leaves out ${needed}, which the remote build needs`);
    }
  });
});
