import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { detectMimeType } from 'nodemailer/lib/mime-funcs';
import { MailError } from '../../shared/errors.js';
import { parseJsonObject } from '../../shared/http/jsonBody.js';
import { MailRuntime } from '../../shared/runtime.js';
import { sendMail } from '../../shared/send/sendMail.js';
import { parseFlags, printFailure, printResult, stderrLogger, type CliCommand } from '../command.js';

const usage = [
  'm365-mail send [--profile P] --to A [--to B] [--cc C] [--bcc D] [--reply-to R] [--from F]',
  '                      --subject S [--text T] [--html H] [--importance low|normal|high] [--attach FILE ...]',
  '       m365-mail send --json FILE|-      (the JSON body of POST /api/send, from a file or stdin)',
].join('\n');

const options = {
  profile: { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string', multiple: true },
  cc: { type: 'string', multiple: true },
  bcc: { type: 'string', multiple: true },
  'reply-to': { type: 'string', multiple: true },
  subject: { type: 'string' },
  text: { type: 'string' },
  html: { type: 'string' },
  importance: { type: 'string' },
  attach: { type: 'string', multiple: true },
  json: { type: 'string' },
} as const;

type SendFlags = ReturnType<typeof parseFlags<typeof options>>;

export const sendCommand: CliCommand = {
  summary: 'Send one message through a profile, with the same validation and transports as POST /api/send.',
  usage,
  async run(args) {
    let flags: SendFlags;
    try {
      flags = parseFlags(args, options, 'send');
      const body = flags.json === undefined ? await bodyFromFlags(flags) : await bodyFromJson(flags);
      const runtime = new MailRuntime({ logger: stderrLogger });
      try {
        const outcome = await sendMail(runtime, body);
        return printResult(outcome);
      } finally {
        await runtime.close();
      }
    } catch (error) {
      return printFailure(error, 'send');
    }
  },
};

async function bodyFromJson(flags: SendFlags): Promise<Record<string, unknown>> {
  const others = Object.keys(flags).filter((k) => k !== 'json' && flags[k as keyof SendFlags] !== undefined);
  if (others.length > 0) {
    throw new MailError('EINPUT', `--json cannot be combined with --${others.join(', --')}`, {
      field: `--${others[0]}`,
      hint: 'Put every field into the JSON document, or use the options without --json.',
    });
  }
  const source = flags.json!;
  return parseJsonObject(source === '-' ? await readStdin() : (await readInput(source, '--json')).toString('utf8'));
}

async function bodyFromFlags(flags: SendFlags): Promise<Record<string, unknown>> {
  const attachments = await Promise.all(
    (flags.attach ?? []).map(async (file) => ({
      filename: path.basename(file),
      contentType: detectMimeType(path.extname(file).slice(1)),
      content: (await readInput(file, '--attach')).toString('base64'),
    })),
  );
  const body: Record<string, unknown> = {
    profile: flags.profile,
    from: flags.from,
    to: flags.to,
    cc: flags.cc,
    bcc: flags.bcc,
    replyTo: flags['reply-to'],
    subject: flags.subject,
    text: flags.text,
    html: flags.html,
    importance: flags.importance,
    attachments: attachments.length ? attachments : undefined,
  };
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

async function readInput(file: string, option: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new MailError('EINPUT', `${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'cannot be read'}`, {
      field: option,
      hint: `Check that ${file} exists and is a readable file.`,
    });
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}
