import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { checkConfiguration } from '../../shared/startup.js';
import { setRuntime } from '../../shared/runtime.js';
import type { LogEvent, Logger } from '../../shared/log.js';
import { functionEntryFiles, installFunctionsCore, registeredHooks } from '../peers/functionsCore.js';
import { setProcessEnv } from '../support/processEnv.js';

function capture(): { logger: Logger; events: Array<{ level: string; event: LogEvent }> } {
  const events: Array<{ level: string; event: LogEvent }> = [];
  const push = (level: string) => (event: LogEvent) => events.push({ level, event });
  return { logger: { info: push('info'), warn: push('warn'), error: push('error') }, events };
}

describe('configuration is validated when the app starts', () => {
  before(() => {
    installFunctionsCore();
    for (const file of functionEntryFiles(APP_ROOT)) require(file);
  });

  it('registers an appStart hook that the host runs once at start-up', () => {
    const starts = registeredHooks().filter((h) => h.name === 'appStart');
    assert.equal(starts.length, 1);
  });

  it('an invalid profile is logged at start-up naming the profile and the field, and the app keeps running', (t) => {
    const restore = setProcessEnv({ MAIL_PROFILES: JSON.stringify({ profiles: { support: { mailbox: 'not-an-address', auth: { type: 'none' }, send: { via: 'file' } } } }) });
    t.after(() => {
      restore();
      setRuntime(undefined);
    });
    setRuntime(undefined);
    const { logger, events } = capture();
    const result = checkConfiguration(logger);
    assert.deepEqual(result, { ok: false, code: 'ECONFIG' });
    assert.equal(events.length, 1);
    const [{ level, event }] = events as [{ level: string; event: LogEvent }];
    assert.equal(level, 'error');
    assert.equal(event.operation, 'startup');
    assert.equal(event.code, 'ECONFIG');
    assert.equal(event.profile, 'support');
    assert.equal(event.field, 'mailbox');
    assert.match(String(event.hint), /profiles\.support\.mailbox/);
  });

  it('a valid configuration is logged with its profile count and source', (t) => {
    const restore = setProcessEnv({ MAIL_PROFILES: '', MAIL_PROFILES_FILE: '' });
    t.after(() => {
      restore();
      setRuntime(undefined);
    });
    setRuntime(undefined);
    const { logger, events } = capture();
    assert.deepEqual(checkConfiguration(logger), { ok: true, profiles: 1, source: 'built-in' });
    assert.deepEqual(events.map((e) => [e.level, e.event.operation, e.event.outcome]), [['info', 'startup', 'ok']]);
  });

  it('the registered hook runs the check with the host context', (t) => {
    const restore = setProcessEnv({ MAIL_PROFILES: '{ not json' });
    const lines: string[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
    t.after(() => {
      console.error = original;
      restore();
      setRuntime(undefined);
    });
    setRuntime(undefined);
    const hook = registeredHooks().find((h) => h.name === 'appStart')!;
    hook.callback({ hookData: {} });
    assert.equal(lines.length, 1);
    const event = JSON.parse(lines[0]!) as LogEvent;
    assert.deepEqual([event.operation, event.outcome, event.code, event.field], ['startup', 'error', 'ECONFIG', 'MAIL_PROFILES']);
  });
});
