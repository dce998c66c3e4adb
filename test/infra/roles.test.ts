import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { INFRA_DIR, bicepFile, objectEntries, variable } from './bicepSource.js';

/**
 * Azure built-in role definition ids, as Microsoft lists them:
 * https://learn.microsoft.com/azure/role-based-access-control/built-in-roles
 * (Storage: .../built-in-roles/storage; Key Vault: .../built-in-roles/security and
 * https://learn.microsoft.com/azure/key-vault/general/rbac-guide; Monitoring:
 * .../built-in-roles/monitor). A built-in role's id is the same in every tenant and cloud.
 */
const BUILT_IN_ROLES: Record<string, string> = {
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  'b86a8fe4-44ce-4948-aee5-eccb2c155cd7': 'Key Vault Secrets Officer',
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3': 'Storage Table Data Contributor',
  '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
};

const GUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** "Key Vault Secrets User" and keyVaultSecretsUser are the same name. */
const squash = (name: string) => name.replace(/[^A-Za-z0-9]/g, '').toLowerCase();

function rbac(): string {
  return bicepFile('app/rbac.bicep');
}

/** The `roles` table of rbac.bicep: key -> role definition id. */
function rolesTable(): Map<string, string> {
  const literal = variable(rbac(), 'roles');
  assert.ok(literal, 'infra/app/rbac.bicep has no roles variable');
  return new Map(objectEntries(literal).map((e) => [e.key, e.value.replace(/^'|'$/g, '')]));
}

describe('role assignments: built-in roles, by their documented ids', () => {
  it('every role definition id in infra/ is a built-in role, under its own name', () => {
    const ids = new Set<string>();
    const files = readdirSync(INFRA_DIR, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.bicep'));
    for (const file of files) {
      // The raw text, comments included: an id in a comment is checked too.
      const lines = readFileSync(path.join(INFRA_DIR, file), 'utf8').split('\n');
      for (const line of lines) {
        for (const match of line.matchAll(GUID)) {
          const id = match[0].toLowerCase();
          ids.add(id);
          const role = BUILT_IN_ROLES[id];
          assert.ok(role, `${file}: ${id} is not in the table of built-in roles this test cites`);
          const key = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:/.exec(line)?.[1];
          assert.ok(
            (key !== undefined && squash(key) === squash(role)) || line.includes(role),
            `${file}: ${id} is ${role}, but the line names it otherwise: ${line.trim()}`,
          );
        }
      }
    }
    assert.ok(ids.size > 0, 'no role definition id found in infra/');
  });

  it('the roles table holds exactly the roles the app needs, and every one is assigned', () => {
    const table = rolesTable();
    assert.deepEqual([...table.values()].map((id) => BUILT_IN_ROLES[id]).sort(), Object.values(BUILT_IN_ROLES).sort());
    const text = rbac();
    for (const key of table.keys()) assert.match(text, new RegExp(`roles\\.${key}\\b`), `roles.${key} is never assigned`);
  });

  it('every assignment names its role from the table, at a resource scope, for a principal of a declared type', () => {
    const text = rbac();
    const assignments = [...text.matchAll(/^resource\s+(\w+)\s+'Microsoft\.Authorization\/roleAssignments@2022-04-01'/gm)];
    assert.ok(assignments.length > 0);
    assert.doesNotMatch(text, /roleDefinitions'\s*,\s*'[0-9a-f-]{36}'/, 'role ids come from the roles table, not inline');
    for (const match of text.matchAll(/roleDefinitionId:\s*(.+)$/gm)) {
      assert.equal(match[1]!.trim(), "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', a.role)");
    }
  });

  it('Key Vault Secrets Officer goes to the app\'s identity only when delegatedAuth says it writes secrets', () => {
    const text = rbac();
    const officerForIdentity = text.split('\n').filter((line) => /appIdentity/.test(line) && /roles\.keyVaultSecretsOfficer/.test(line));
    assert.equal(officerForIdentity.length, 1, 'one place assigns Secrets Officer to the identity');
    assert.match(officerForIdentity[0]!, /^\s*delegatedAuth \? \[/);
    const userForIdentity = text.split('\n').filter((line) => /appIdentity/.test(line) && /roles\.keyVaultSecretsUser/.test(line));
    assert.equal(userForIdentity.length, 1);
    assert.doesNotMatch(userForIdentity[0]!, /\?/, 'Secrets User is unconditional');
  });
});
