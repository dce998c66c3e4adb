/**
 * Table PartitionKey/RowKey values may not contain `/ \ # ?` or control characters and are
 * at most 1 KiB; percent-encoding removes every one of those and stays readable.
 * docs: https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model
 */
export function tableKey(value: string): string {
  return encodeURIComponent(value);
}
