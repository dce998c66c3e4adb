import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import semver from 'semver';
import { APP_ROOT } from '../../shared/config/profiles.js';

interface LockPackage {
  dev?: boolean;
  optional?: boolean;
  engines?: { node?: string } | string[];
}

/**
 * `engines` promises the Node.js versions Azure Functions runs (20 and 22): every version it admits
 * must also be one that each installed production dependency admits (undici 7 needs 20.18.1,
 * html-to-text 20.19.0), or `npm ci` on an older 20 warns and the app breaks at run time.
 */
describe('package.json engines', () => {
  const pkg = JSON.parse(readFileSync(path.join(APP_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  const lock = JSON.parse(readFileSync(path.join(APP_ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockPackage> };
  const ours = pkg.engines.node;

  it('admits Node.js 20 and 22, the versions Azure Functions runs', () => {
    assert.ok(semver.validRange(ours), ours);
    assert.ok(semver.intersects(ours, '20.x'), `${ours} excludes Node.js 20`);
    assert.ok(semver.intersects(ours, '22.x'), `${ours} excludes Node.js 22`);
    assert.equal(semver.satisfies('18.20.0', ours), false);
  });

  it('admits no version that a production dependency refuses', () => {
    const wanted = Object.entries(lock.packages).flatMap(([name, p]) => {
      const node = p.engines !== undefined && !Array.isArray(p.engines) ? p.engines.node : undefined;
      return name !== '' && p.dev !== true && p.optional !== true && node !== undefined && semver.validRange(node) !== null ? [{ name: name.replace(/^.*node_modules\//, ''), node }] : [];
    });
    assert.ok(wanted.some((w) => w.name === 'undici'), 'the lockfile names the production dependencies\' engines');
    const refusing = wanted.filter((w) => !semver.subset(ours, w.node)).map((w) => `${w.name} wants ${w.node}`);
    assert.deepEqual(refusing, [], `engines.node "${ours}" admits versions these refuse`);
  });
});
