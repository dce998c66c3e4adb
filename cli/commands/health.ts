import { profilesHealth } from '../../shared/health/report.js';
import { MailRuntime } from '../../shared/runtime.js';
import { EXIT_FAILURE, parseFlags, printFailure, printResult, stateEnv, stderrLogger, type CliCommand } from '../command.js';

const usage = 'm365-mail health';

export const healthCommand: CliCommand = {
  summary: 'Show each receiving profile\'s last poll, failures and last error, and when each profile\'s secret or certificate expires, as GET /api/health/profiles; exit 1 unless all are ok.',
  usage,
  async run(args) {
    try {
      parseFlags(args, {}, 'health');
      const report = await profilesHealth(new MailRuntime({ env: stateEnv(), logger: stderrLogger }));
      const printed = printResult(report);
      // A monitoring script or cron job alerts on the exit code.
      return report.ok ? printed : EXIT_FAILURE;
    } catch (error) {
      return printFailure(error, 'health');
    }
  },
};
