import * as azureFunctions from '@azure/functions';
import { createLogger } from '../shared/log.js';
import { instrumentFunctionsHost } from '../shared/telemetry/functionsHost.js';

/** Checks the configuration when the host starts: the first thing that loads the app (functions/lazy.ts). */
export function appStart(): void {
  const { checkConfiguration } = require('../shared/startup.js') as typeof import('../shared/startup.js');
  checkConfiguration();
}

// While the app loads, before the host locks its setup: only when an exporter is configured.
instrumentFunctionsHost(azureFunctions, createLogger());
azureFunctions.app.hook.appStart(appStart);
