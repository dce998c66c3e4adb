import * as azureFunctions from '@azure/functions';
import { createLogger } from '../shared/log.js';
import { checkConfiguration } from '../shared/startup.js';
import { instrumentFunctionsHost } from '../shared/telemetry/functionsHost.js';

export function appStart(): void {
  checkConfiguration(createLogger());
}

// While the app loads, before the host locks its setup: only when an exporter is configured.
instrumentFunctionsHost(azureFunctions, createLogger());
azureFunctions.app.hook.appStart(appStart);
