import { GOVERNOR_TABLE } from '../../shared/governor/governorTable.js';
import type { StorageAccount } from '../../shared/state/storage.js';

/** Forgets every budget and pace row, so that a test starts from an idle mailbox instead of what the test before it left. */
export async function clearGovernorState(account: StorageAccount): Promise<void> {
  const table = await account.table(GOVERNOR_TABLE);
  for await (const row of table.listEntities()) await table.deleteEntity(row.partitionKey!, row.rowKey!);
}
