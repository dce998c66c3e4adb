/**
 * A count over a sliding window, kept as two fixed windows (the current one and the one before):
 * the estimate weighs the previous window by the part of it still inside the sliding window. A
 * fixed window alone would let twice the limit through around a window's end (a full window's
 * worth just before it and again just after); Graph and Exchange count over rolling periods.
 */
export interface WindowCount {
  /** Start of the current fixed window (ms since the epoch, a multiple of the window length). */
  windowStart: number;
  used: number;
  /** What the window before `windowStart` used. */
  previous: number;
}

export const EMPTY_COUNT: WindowCount = { windowStart: 0, used: 0, previous: 0 };

/** The count as of `now`: rolled over into the window `now` falls in. */
export function rollTo(count: WindowCount, now: number, windowMs: number): WindowCount {
  const start = Math.floor(now / windowMs) * windowMs;
  // A moment before the row's window (another instance's clock, a booking made for later) counts in it.
  if (start <= count.windowStart) return count;
  if (start === count.windowStart + windowMs) return { windowStart: start, used: 0, previous: count.used };
  return { windowStart: start, used: 0, previous: 0 };
}

/** How much of the sliding window ending at `now` is used. */
export function estimate(count: WindowCount, now: number, windowMs: number): number {
  const rolled = rollTo(count, now, windowMs);
  const elapsed = Math.min(1, Math.max(0, (now - rolled.windowStart) / windowMs));
  return rolled.previous * (1 - elapsed) + rolled.used;
}

/** Milliseconds from `now` until `amount` more fit under `limit` (0: they fit now). */
export function waitFor(count: WindowCount, amount: number, limit: number, now: number, windowMs: number): number {
  const step = Math.max(1, Math.ceil(windowMs / 1000));
  for (let wait = 0; wait <= 2 * windowMs; wait += step) {
    if (estimate(count, now + wait, windowMs) + amount <= limit) return wait;
  }
  return 2 * windowMs;
}
