/** What escaped every handler: an unhandled rejection or an uncaught exception would crash a worker. */
export interface ProcessFailures {
  unhandledRejections: unknown[];
  uncaughtExceptions: unknown[];
}

/**
 * Records every unhandled rejection and uncaught exception of this process from now on. The
 * Functions worker dies of either; node:test reports them too, but the suite counts them.
 */
export function recordProcessFailures(): ProcessFailures {
  const failures: ProcessFailures = { unhandledRejections: [], uncaughtExceptions: [] };
  process.on('unhandledRejection', (reason) => failures.unhandledRejections.push(reason));
  process.on('uncaughtException', (error) => failures.uncaughtExceptions.push(error));
  return failures;
}

/** A plain-text table, columns padded, for the suite's summary. */
export function table(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  const cells = [header, ...rows].map((row) => row.map(String));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`;
  return [line(cells[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

/** The secrets of `values` that occur in `text`, by name. */
export function secretsIn(text: string, values: Record<string, string>): string[] {
  return Object.entries(values)
    .filter(([, value]) => value.length > 0 && text.includes(value))
    .map(([name]) => name);
}
