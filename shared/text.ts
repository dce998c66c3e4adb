/**
 * `value` without the characters of `set` at its start and end, in one pass from each end.
 * Instead of `replace(/^[…]+|[…]+$/g, '')`: on a long run of such characters that does not reach
 * the end, a regular expression engine retries the `[…]+$` branch from every position of the run
 * (quadratic time), so a 600 KB run of tabs in an attachment's file name held a poll for minutes.
 */
export function stripEnds(value: string, set: string, ends: 'both' | 'end' = 'both'): string {
  let start = 0;
  let end = value.length;
  if (ends === 'both') while (start < end && set.includes(value[start]!)) start++;
  while (end > start && set.includes(value[end - 1]!)) end--;
  return start === 0 && end === value.length ? value : value.slice(start, end);
}
