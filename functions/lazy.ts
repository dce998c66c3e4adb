/**
 * A handler whose module is loaded on its first call. The functions' files register with the host
 * and load nothing else (cold start: the host waits for every registration before it answers);
 * each handler's use case, and what it imports (zod schemas, the runtime, the profiles), is
 * required when an invocation first needs it. Measured by `npm run bench:startup`.
 */
export function lazyHandler<A extends unknown[], R>(load: () => (...args: A) => R): (...args: A) => R {
  let handler: ((...args: A) => R) | undefined;
  return (...args: A) => {
    handler ??= load();
    return handler(...args);
  };
}
