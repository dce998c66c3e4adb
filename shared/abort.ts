/**
 * Waits for `promise` until `signal` fires, then rejects with the signal's reason. The work
 * itself goes on: this is for work that others share (a token request several sends wait
 * for) or that takes no signal of its own (nodemailer's verify). The promise is observed
 * either way, so that a failure after the wait ended is not an unhandled rejection.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function delay(ms: number, abortSignal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    abortSignal?.throwIfAborted();
    const timer = setTimeout(() => {
      abortSignal?.removeEventListener('abort', aborted);
      resolve();
    }, ms);
    const aborted = () => {
      clearTimeout(timer);
      reject(abortSignal!.reason);
    };
    abortSignal?.addEventListener('abort', aborted, { once: true });
  });
}
