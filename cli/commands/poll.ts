import { receivingProfiles } from '../../shared/receive/pollMailbox.js';
import { pollAndRecord } from '../../shared/receive/pollRequests.js';
import { MailError } from '../../shared/errors.js';
import { MailRuntime } from '../../shared/runtime.js';
import { parseFlags, EXIT_FAILURE, EXIT_OK, printFailure, printResult, stateEnv, stderrLogger, type CliCommand } from '../command.js';

const usage = 'm365-mail poll [--profile P | --all]';

const options = {
  profile: { type: 'string' },
  all: { type: 'boolean' },
} as const;

export const pollCommand: CliCommand = {
  summary: 'Poll a receiving profile (or --all) once, as pollNow does: deliver new mail, print the result.',
  usage,
  async run(args) {
    let runtime: MailRuntime | undefined;
    try {
      const flags = parseFlags(args, options, 'poll');
      if (flags.all && flags.profile !== undefined) {
        throw new MailError('EINPUT', '--profile and --all exclude each other', { field: 'arguments', hint: 'Name one profile, or poll them all.' });
      }
      runtime = new MailRuntime({ env: stateEnv(), logger: stderrLogger });
      const names = flags.all ? receivingProfiles(runtime).map((p) => p.name) : [runtime.profile(flags.profile).name];
      const results = [];
      for (const name of names) results.push(await pollAndRecord(runtime, name));
      printResult(flags.all ? results : results[0]);
      return results.every((r) => r.status === 'completed' || r.status === 'leased') ? EXIT_OK : EXIT_FAILURE;
    } catch (error) {
      return printFailure(error, 'poll');
    } finally {
      await runtime?.close();
    }
  },
};
