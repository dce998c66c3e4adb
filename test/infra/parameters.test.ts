import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { INFRA_DIR, bicepFile, params } from './bicepSource.js';

/**
 * infra/main.parameters.json is what azd hands to main.bicep, after replacing each
 * `${NAME}` (or `${NAME=default}`) with the azd environment's value. A parameter the file names
 * but main.bicep does not declare fails the deployment; one main.bicep requires but the file
 * does not give makes azd prompt for it, every time, and fails a pipeline.
 */
function parameterFile(): Record<string, { value: unknown }> {
  const file = JSON.parse(readFileSync(path.join(INFRA_DIR, 'main.parameters.json'), 'utf8')) as { parameters?: Record<string, { value: unknown }> };
  assert.ok(file.parameters, 'main.parameters.json has no parameters');
  return file.parameters;
}

const PLACEHOLDER = /^\$\{([A-Z_][A-Z0-9_]*)(?:=([^}]*))?\}$/;

describe('infra/main.parameters.json and infra/main.bicep agree', () => {
  const declared = params(bicepFile('main.bicep'));
  const given = parameterFile();

  it('main.bicep declares its parameters (the parser found them)', () => {
    assert.ok(declared.some((p) => p.name === 'environmentName' && !p.optional));
    assert.ok(declared.some((p) => p.name === 'vnetEnabled' && p.type === 'bool' && p.optional));
    assert.deepEqual(declared.find((p) => p.name === 'nodeVersion')?.allowed, ['20', '22']);
  });

  it('names only parameters main.bicep declares', () => {
    const names = new Set(declared.map((p) => p.name));
    assert.deepEqual(Object.keys(given).filter((name) => !names.has(name)), []);
  });

  it('gives every parameter main.bicep has no default for', () => {
    assert.deepEqual(declared.filter((p) => !p.optional && !(p.name in given)).map((p) => p.name), []);
  });

  it('passes azd\'s own values: environment name, location, the signed-in principal', () => {
    assert.equal(given.environmentName?.value, '${AZURE_ENV_NAME}');
    assert.equal(given.location?.value, '${AZURE_LOCATION}');
    assert.equal(given.principalId?.value, '${AZURE_PRINCIPAL_ID}');
  });

  it('every value is one azd placeholder whose default, if any, the parameter accepts', () => {
    for (const [name, { value }] of Object.entries(given)) {
      assert.equal(typeof value, 'string', `${name}: expected a \${...} placeholder`);
      const match = PLACEHOLDER.exec(value as string);
      assert.ok(match, `${name}: "${value as string}" is not \${NAME} or \${NAME=default}`);
      const fallback = match[2];
      const param = declared.find((p) => p.name === name)!;
      if (fallback === undefined) continue;
      if (param.type === 'bool') assert.match(fallback, /^(true|false)$/, `${name}: a bool's default must be true or false`);
      if (param.type === 'int') assert.match(fallback, /^-?\d+$/, `${name}: an int's default must be a number`);
      if (param.allowed) assert.ok(param.allowed.includes(fallback), `${name}: default "${fallback}" is not one of ${param.allowed.join(', ')}`);
    }
  });
});
