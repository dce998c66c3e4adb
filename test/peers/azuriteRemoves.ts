/**
 * Preloaded into the Azurite process (test/peers/azurite.ts): two removals in its in-memory
 * store made cheap, with what they remove unchanged. Azurite keeps queue messages and blob
 * extents in LokiJS collections whose every remove re-sorts each of the collection's indexes,
 * even a remove of nothing; and Azurite makes one such remove per queue request (it clears
 * expired messages, which are almost never there) and one per extent its garbage collector
 * deletes. With a queue of 1,000 messages that was a third of the emulator's CPU in the fault
 * matrix, work no storage account does. Here a remove of nothing returns at once, and the
 * collector's extents go in one remove. Where Azurite's or LokiJS's shape is not the expected
 * one, nothing is changed.
 */
import path from 'node:path';

interface LokiCollection {
  removeBatch(batch: unknown[]): void;
  findAndRemove(query: Record<string, unknown>): void;
}

const azuriteDir = path.dirname(require.resolve('azurite/package.json'));
const Loki = require(require.resolve('lokijs', { paths: [azuriteDir] })) as { Collection?: { prototype: LokiCollection } };

const collection = Loki.Collection?.prototype;
if (collection && typeof collection.removeBatch === 'function') {
  const removeBatch = collection.removeBatch;
  collection.removeBatch = function (this: LokiCollection, batch: unknown[]) {
    if (Array.isArray(batch) && batch.length === 0) return;
    removeBatch.call(this, batch);
  };
}

interface ExtentMetadataStore {
  db?: { getCollection(name: string): LokiCollection | null };
  EXTENTS_COLLECTION?: string;
}

interface MemoryExtentStore {
  categoryName: string;
  chunks: { get(category: string, id: string): unknown; delete(category: string, id: string): void };
  metadataStore: ExtentMetadataStore;
  deleteExtents(extents: Iterable<string>): Promise<number>;
}

const memoryStore = (require(path.join(azuriteDir, 'dist/src/common/persistence/MemoryExtentStore.js')) as { default?: { prototype: MemoryExtentStore } }).default?.prototype;
if (memoryStore && typeof memoryStore.deleteExtents === 'function') {
  const deleteExtents = memoryStore.deleteExtents;
  memoryStore.deleteExtents = async function (this: MemoryExtentStore, extents: Iterable<string>): Promise<number> {
    const extentsCollection = this.metadataStore?.EXTENTS_COLLECTION && this.metadataStore.db?.getCollection(this.metadataStore.EXTENTS_COLLECTION);
    if (!extentsCollection || !this.chunks) return deleteExtents.call(this, extents);
    const ids = [...extents];
    for (const id of ids) if (this.chunks.get(this.categoryName, id)) this.chunks.delete(this.categoryName, id);
    if (ids.length > 0) extentsCollection.findAndRemove({ id: { $in: ids } });
    return ids.length;
  };
}
