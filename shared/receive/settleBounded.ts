/** How one task ended; `undefined` in its place means it was never started. */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface SettleBoundedOptions<T> {
  /** Tasks in flight at once. */
  limit: number;
  /** Items whose task must run with no other in flight (a large message's buffers and uploads). */
  alone?: (item: T) => boolean;
}

/**
 * Runs `task` over `items` with at most `limit` in flight, starting them in order, and stops
 * starting new ones after the first failure. Tasks already running finish, so what they did
 * (a delivery) is known. Returns each item's outcome at its own index.
 */
export async function settleBounded<T, R>(items: readonly T[], options: SettleBoundedOptions<T>, task: (item: T, index: number) => Promise<R>): Promise<Array<Settled<R> | undefined>> {
  const outcomes: Array<Settled<R> | undefined> = new Array<Settled<R> | undefined>(items.length).fill(undefined);
  const alone = (index: number) => options.alone?.(items[index]!) ?? false;
  let failed = false;
  let start = 0;
  while (start < items.length && !failed) {
    // A run of items that may share the limit, or one item that runs alone.
    let end = start + 1;
    if (!alone(start)) while (end < items.length && !alone(end)) end++;
    let next = start;
    const worker = async () => {
      while (!failed && next < end) {
        const index = next++;
        try {
          outcomes[index] = { ok: true, value: await task(items[index]!, index) };
        } catch (error) {
          outcomes[index] = { ok: false, error };
          failed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(options.limit, end - start) }, worker));
    start = end;
  }
  return outcomes;
}

/** The values up to the first task that failed or never started, and that failure's error. */
export function settledPrefix<R>(outcomes: ReadonlyArray<Settled<R> | undefined>): { values: R[]; failure?: { error: unknown } } {
  const values: R[] = [];
  for (const outcome of outcomes) {
    if (outcome === undefined) break;
    if (!outcome.ok) return { values, failure: { error: outcome.error } };
    values.push(outcome.value);
  }
  return { values };
}
