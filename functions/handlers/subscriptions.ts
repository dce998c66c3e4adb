import type { InvocationContext, Timer } from '@azure/functions';
import { renewSubscriptions } from '../../shared/receive/push.js';
import { getRuntime } from '../../shared/runtime.js';

export async function subscriptions(timer: Timer, context: InvocationContext): Promise<void> {
  const results = await renewSubscriptions(getRuntime());
  const outcomes = Object.fromEntries(['created', 'renewed', 'current', 'leased', 'failed'].map((o) => [o, results.filter((r) => r.outcome === o).length]));
  context.log(JSON.stringify({ operation: 'subscriptions', outcome: outcomes.failed ? 'error' : 'ok', ...outcomes, isPastDue: timer.isPastDue }));
}
