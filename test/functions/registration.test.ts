import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { functionEntryFiles, installFunctionsCore, registeredFunctions, triggerOf, type RegisteredFunction } from '../peers/functionsCore.js';

/**
 * Every function the app registers, with the trigger settings the host will see. Adding a
 * function means adding a row; a row without a function, or a function without a row, fails.
 * Settings are compared as given here: `methods`, `route`, `authLevel` for HTTP, `schedule`
 * (an app-setting name such as `%POLL_SCHEDULE%`) for timers, `queueName` and `connection`
 * (`AzureWebJobsStorage`) for queues.
 */
const EXPECTED: Record<string, { file: string; trigger: Record<string, unknown> }> = {
  send: { file: 'send.js', trigger: { type: 'httpTrigger', methods: ['POST'], route: 'send', authLevel: 'function' } },
  sendStatus: { file: 'sendStatus.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'send/{id}', authLevel: 'function' } },
  sendWorker: { file: 'sendWorker.js', trigger: { type: 'queueTrigger', queueName: 'mail-send', connection: 'AzureWebJobsStorage' } },
  profiles: { file: 'profiles.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'profiles', authLevel: 'function' } },
  // App Service Health check and load balancer probes call it without a key.
  health: { file: 'health.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'health', authLevel: 'anonymous' } },
  healthProfiles: { file: 'healthProfiles.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'health/profiles', authLevel: 'function' } },
  poll: { file: 'poll.js', trigger: { type: 'timerTrigger', schedule: '%POLL_SCHEDULE%' } },
  pollWorker: { file: 'pollWorker.js', trigger: { type: 'queueTrigger', queueName: 'mail-poll', connection: 'AzureWebJobsStorage' } },
  pollNow: { file: 'pollNow.js', trigger: { type: 'httpTrigger', methods: ['POST'], route: 'profiles/{name}/poll', authLevel: 'function' } },
  redeliver: { file: 'redeliver.js', trigger: { type: 'httpTrigger', methods: ['POST'], route: 'profiles/{name}/redeliver', authLevel: 'function' } },
  testProfile: { file: 'testProfile.js', trigger: { type: 'httpTrigger', methods: ['POST'], route: 'profiles/{name}/test', authLevel: 'function' } },
  connect: { file: 'connect.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'connect/{profile}', authLevel: 'function' } },
  // The API's shape only, the same for every deployment: tools import it by URL.
  openapi: { file: 'openapi.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'openapi.json', authLevel: 'anonymous' } },
  // Graph sends no function key: each notification's clientState authenticates it.
  notifications: { file: 'notifications.js', trigger: { type: 'httpTrigger', methods: ['POST'], route: 'notifications/graph', authLevel: 'anonymous' } },
  lifecycleNotifications: { file: 'lifecycleNotifications.js', trigger: { type: 'httpTrigger', methods: ['POST'], route: 'notifications/graph/lifecycle', authLevel: 'anonymous' } },
  subscriptions: { file: 'subscriptions.js', trigger: { type: 'timerTrigger', schedule: '%SUBSCRIPTION_RENEW_SCHEDULE%' } },
  pollFallback: { file: 'pollFallback.js', trigger: { type: 'timerTrigger', schedule: '%PUSH_FALLBACK_SCHEDULE%' } },
  // The browser returns from the sign-in without a function key.
  oauthCallback: { file: 'oauthCallback.js', trigger: { type: 'httpTrigger', methods: ['GET'], route: 'oauth/callback', authLevel: 'anonymous' } },
};

describe('the app registers its functions with the Functions host', () => {
  const byFile = new Map<string, Record<string, unknown>>();
  let functions: readonly RegisteredFunction[] = [];

  before(() => {
    // As in Azure, where the setting is defined: the timer then names it rather than a value.
    process.env.POLL_SCHEDULE = '0 */5 * * * *';
    process.env.SUBSCRIPTION_RENEW_SCHEDULE = '0 0 * * * *';
    process.env.PUSH_FALLBACK_SCHEDULE = '0 */30 * * * *';
    installFunctionsCore();
    for (const file of functionEntryFiles(APP_ROOT)) byFile.set(path.basename(file), require(file) as Record<string, unknown>);
    functions = registeredFunctions();
  });

  it('registers exactly the functions in the table, each once', () => {
    const names = functions.map((f) => f.name).sort();
    assert.deepEqual(names, Object.keys(EXPECTED).sort());
  });

  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`registers ${name} from ${expected.file} with ${JSON.stringify(expected.trigger)}`, () => {
      const fn = functions.find((f) => f.name === name);
      assert.ok(fn, `${name} is not registered`);
      const trigger = triggerOf(fn);
      const actual = Object.fromEntries(Object.keys(expected.trigger).map((key) => [key, trigger[key]]));
      assert.deepEqual(actual, expected.trigger);
      const exports = byFile.get(expected.file);
      assert.ok(exports, `${expected.file} was not loaded from package.json main`);
      assert.equal(fn.handler, exports[name], `the registered handler is not ${expected.file}'s exported ${name}`);
    });
  }

  it('binds no timer to run on start-up and names connections by setting, never by value', () => {
    for (const fn of functions) {
      const trigger = triggerOf(fn);
      if (trigger.type === 'timerTrigger') assert.notEqual(trigger.runOnStartup, true, `${fn.name} runs on start-up`);
      for (const binding of Object.values(fn.bindings)) {
        if (typeof binding.connection === 'string') assert.doesNotMatch(binding.connection, /[=;]/, `${fn.name} has a connection string inline`);
      }
    }
  });
});
