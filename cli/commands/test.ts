import { DIAGNOSIS_TIMEOUT_MS, diagnoseProfile, diagnoseRequestSchema, type DiagnosisReport } from '../../shared/diagnose/diagnoseProfile.js';
import { inputError } from '../../shared/errors.js';
import { MailRuntime } from '../../shared/runtime.js';
import { parseFlags, EXIT_FAILURE, EXIT_OK, printFailure, printResult, stderrLogger, type CliCommand } from '../command.js';

const usage = 'm365-mail test [--profile P] [--send-to ADDRESS] [--json]';

const options = {
  profile: { type: 'string' },
  'send-to': { type: 'string' },
  json: { type: 'boolean' },
} as const;

export const testCommand: CliCommand = {
  summary: 'Diagnose a profile step by step (config, secret, token, connections; --send-to also sends a test message), with hints.',
  usage,
  async run(args) {
    let runtime: MailRuntime | undefined;
    try {
      const flags = parseFlags(args, options, 'test');
      const request = diagnoseRequestSchema.safeParse(flags['send-to'] === undefined ? {} : { sendTo: flags['send-to'] });
      if (!request.success) throw inputError(request.error);
      const sendTo = request.data.sendTo;
      const report = await diagnoseProfile(() => (runtime = new MailRuntime({ logger: stderrLogger })), flags.profile, {
        abortSignal: AbortSignal.timeout(DIAGNOSIS_TIMEOUT_MS),
        ...(sendTo !== undefined && { send: { to: sendTo } }),
      });
      if (flags.json) printResult(report);
      else process.stdout.write(formatReport(report));
      return report.ok ? EXIT_OK : EXIT_FAILURE;
    } catch (error) {
      return printFailure(error, 'test');
    } finally {
      await runtime?.close();
    }
  },
};

/** One line per step (✓/✗, name, duration, detail), then the code and hint indented under it; last, when the credential expires. */
export function formatReport(report: DiagnosisReport): string {
  const failed = report.steps.find((s) => !s.ok);
  const lines = [`Profile ${report.profile}: ${failed ? `failed at ${failed.step}` : 'all steps passed'}`];
  const width = Math.max(...report.steps.map((s) => s.step.length));
  const indent = ' '.repeat(width + 16);
  for (const s of report.steps) {
    lines.push(`  ${s.ok ? '✓' : '✗'} ${s.step.padEnd(width)} ${`${s.durationMs} ms`.padStart(9)}  ${s.detail ?? ''}`);
    if (s.code) lines.push(`${indent}code ${s.code}${s.providerCode ? ` (${s.providerCode})` : ''}`);
    if (s.hint) lines.push(`${indent}hint: ${s.hint}`);
  }
  const c = report.credential;
  if (c) {
    const what = `${c.credential === 'certificate' ? 'certificate' : 'client secret'} "${c.secret}"`;
    lines.push(c.expiresOn === null ? `Credential: ${what}: no expiry date known (${c.state})` : `Credential: ${what} expires ${c.expiresOn}: ${c.daysLeft} days left (${c.state})`);
  }
  return `${lines.join('\n')}\n`;
}
