import { healthCommand } from './commands/health.js';
import { pollCommand } from './commands/poll.js';
import { profilesCommand } from './commands/profiles.js';
import { sendCommand } from './commands/send.js';
import { testCommand } from './commands/test.js';
import { EXIT_BAD_INPUT, EXIT_OK, type CliCommand } from './command.js';

/** Adding a subcommand: one file under cli/commands/ and one line here. */
const COMMANDS: Record<string, CliCommand> = {
  send: sendCommand,
  poll: pollCommand,
  health: healthCommand,
  profiles: profilesCommand,
  test: testCommand,
};

function help(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    'm365-mail: send and receive Microsoft 365 mail through a profile, with the same core as the Functions app.',
    '',
    'Usage: m365-mail <command> [options]     m365-mail <command> --help',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Profiles come from MAIL_PROFILES, MAIL_PROFILES_FILE or profiles.json; with none, the built-in',
    '"local" profile writes .eml files to <MAIL_DIR>/outbox (default .mail/outbox) and polls <MAIL_DIR>/inbox.',
    'poll and health keep their state in AzureWebJobsStorage (default: the development storage, Azurite, as npm start runs it).',
    'Exit codes: 0 success (JSON result on stdout), 2 bad input, 1 other failure (problem JSON on stderr).',
  ].join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${help()}\n`);
    return EXIT_OK;
  }
  const command = name === undefined ? undefined : COMMANDS[name];
  if (!command) {
    process.stderr.write(`${name === undefined ? 'm365-mail: a command is required' : `m365-mail: unknown command "${name}"`}\n\n${help()}\n`);
    return EXIT_BAD_INPUT;
  }
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${command.summary}\n\nUsage: ${command.usage}\n`);
    return EXIT_OK;
  }
  return command.run(args);
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
