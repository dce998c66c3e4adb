import { describeProfiles } from '../../shared/profiles/describe.js';
import { MailRuntime } from '../../shared/runtime.js';
import { parseFlags, printFailure, printResult, stderrLogger, type CliCommand } from '../command.js';

const usage = 'm365-mail profiles';

export const profilesCommand: CliCommand = {
  summary: 'List the configured profiles: mailbox, transports, auth type, cloud (never secrets).',
  usage,
  async run(args) {
    try {
      parseFlags(args, {}, 'profiles');
      return printResult(describeProfiles(new MailRuntime({ logger: stderrLogger }).profiles));
    } catch (error) {
      return printFailure(error, 'profiles');
    }
  },
};
