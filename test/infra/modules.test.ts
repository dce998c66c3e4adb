import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { INFRA_DIR, bicepFile, bicepFiles, modules, outputNames, params } from './bicepSource.js';

/**
 * Module references across infra/. Without a Bicep compiler on our machines these are the
 * mistakes no tool would catch before a deployment: an Azure Verified Module that is not pinned
 * (a new version changes what deploys), a local module passed a parameter it does not declare or
 * missing one it requires, an output read that the module does not declare. The parameters of
 * registry modules cannot be checked offline; infra/ passes them as the Azure-Samples Flex
 * Consumption templates do for the same versions.
 */

const PINNED_AVM = /^br\/public:avm\/(?:res|ptn|utl)\/[a-z0-9-]+\/[a-z0-9-]+(?:\/[a-z0-9-]+)?:\d+\.\d+\.\d+$/;

describe('infra/ modules', () => {
  const files = bicepFiles();
  const uses = [...files].flatMap(([file, text]) => modules(text).map((use) => ({ file, ...use })));

  it('finds the module declarations (the parser works)', () => {
    assert.ok(uses.some((u) => u.file === 'main.bicep' && u.symbol === 'api' && u.params.includes('nodeVersion')));
    assert.ok(uses.some((u) => u.source.startsWith('br/public:')));
  });

  it('every registry module is an Azure Verified Module pinned to an exact version', () => {
    const unpinned = uses.filter((u) => !u.source.endsWith('.bicep') && !PINNED_AVM.test(u.source)).map((u) => `${u.file}: ${u.source}`);
    assert.deepEqual(unpinned, []);
  });

  it('every local module file exists', () => {
    for (const use of uses.filter((u) => u.source.endsWith('.bicep'))) {
      assert.ok(existsSync(path.join(INFRA_DIR, path.dirname(use.file), use.source)), `${use.file}: module ${use.symbol} names ${use.source}, which does not exist`);
    }
  });

  it('every local module gets only parameters it declares, and every one it requires', () => {
    for (const use of uses.filter((u) => u.source.endsWith('.bicep'))) {
      const target = path.posix.join(path.posix.dirname(use.file), use.source);
      const declared = params(bicepFile(target));
      const names = new Set(declared.map((p) => p.name));
      assert.deepEqual(use.params.filter((p) => !names.has(p)), [], `${use.file}: module ${use.symbol} passes parameters ${target} does not declare`);
      assert.deepEqual(declared.filter((p) => !p.optional && !use.params.includes(p.name)).map((p) => p.name), [], `${use.file}: module ${use.symbol} leaves out required parameters of ${target}`);
    }
  });

  it('every output read from a local module is one it declares', () => {
    for (const [file, text] of files) {
      const local = new Map(modules(text).filter((u) => u.source.endsWith('.bicep')).map((u) => [u.symbol, path.posix.join(path.posix.dirname(file), u.source)]));
      for (const read of text.matchAll(/\b([A-Za-z_][A-Za-z0-9_]*)(?:\[[^\]]*\])?\.outputs\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
        const target = local.get(read[1]!);
        if (target === undefined) continue;
        assert.ok(outputNames(bicepFile(target)).includes(read[2]!), `${file}: ${read[1]}.outputs.${read[2]} is not an output of ${target}`);
      }
    }
  });
});
