import { app } from '@azure/functions';
import { createLogger } from '../shared/log.js';
import { checkConfiguration } from '../shared/startup.js';

export function appStart(): void {
  checkConfiguration(createLogger());
}

app.hook.appStart(appStart);
