import fc from 'fast-check';

/*
 * Malformed MIME sources made from real ones: a seed message (the corpus, and composed ones) and
 * one to four mutations, each plain data so that fast-check prints and shrinks it. Positions are
 * per mille of the source's length, so a shrunk position moves towards the start.
 */

export type MimeMutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'boundary'; occurrence: number; damage: 'drop-line' | 'alter' | 'unclosed' | 'duplicate' | 'no-dashes' | 'drop-parameter' }
  | { kind: 'lineEnds'; style: '\n' | '\r' | '\r\r\n' | '\n\r'; from: number; to: number }
  | { kind: 'header'; damage: 'fold-first-line' | 'empty-continuation' | 'bare-cr' | 'no-blank-line' | 'colonless-line' | 'nul-in-name' | 'duplicate-from' | 'duplicate-content-type'; at: number }
  | { kind: 'encoding'; damage: 'base64-of-text' | 'bad-quoted-printable' | 'unknown-charset' | 'utf-7' | 'broken-encoded-word' | 'unknown-transfer-encoding' | 'binary-8bit' }
  | { kind: 'hugeLine'; at: number; length: number; fill: 'a' | ' ' | '=' | '\t' }
  | { kind: 'nest'; depth: number; as: 'multipart' | 'rfc822' };

export interface MimeSource {
  seed: number;
  mutations: MimeMutation[];
}

const at = fc.integer({ min: 0, max: 1000 });
const mutation: fc.Arbitrary<MimeMutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at }),
  fc.record({ kind: fc.constant('flip' as const), at, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at, bytes: fc.oneof(fc.constantFrom('\0', '\r', '\n', '\r\n\r\n', '\0\0\0\0', '--', '\r\n--', '=?', '\xff\xfe', ': '), fc.string({ unit: fc.integer({ min: 0, max: 255 }).map((b) => String.fromCharCode(b)), minLength: 1, maxLength: 40 })) }),
  fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant('boundary' as const), occurrence: fc.nat({ max: 8 }), damage: fc.constantFrom('drop-line', 'alter', 'unclosed', 'duplicate', 'no-dashes', 'drop-parameter') }),
  fc.record({ kind: fc.constant('lineEnds' as const), style: fc.constantFrom('\n' as const, '\r' as const, '\r\r\n' as const, '\n\r' as const), from: at, to: at }),
  fc.record({ kind: fc.constant('header' as const), damage: fc.constantFrom('fold-first-line', 'empty-continuation', 'bare-cr', 'no-blank-line', 'colonless-line', 'nul-in-name', 'duplicate-from', 'duplicate-content-type'), at }),
  fc.record({ kind: fc.constant('encoding' as const), damage: fc.constantFrom('base64-of-text', 'bad-quoted-printable', 'unknown-charset', 'utf-7', 'broken-encoded-word', 'unknown-transfer-encoding', 'binary-8bit') }),
  fc.record({ kind: fc.constant('hugeLine' as const), at, length: fc.integer({ min: 1_000, max: 1_200_000 }), fill: fc.constantFrom('a' as const, ' ' as const, '=' as const, '\t' as const) }),
  fc.record({ kind: fc.constant('nest' as const), depth: fc.integer({ min: 1, max: 120 }), as: fc.constantFrom('multipart' as const, 'rfc822' as const) }),
);

/** A seed among `seeds` and one to four mutations of it. */
export function mimeSource(seeds: number): fc.Arbitrary<MimeSource> {
  return fc.record({ seed: fc.nat({ max: seeds - 1 }), mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }) });
}

const position = (raw: Buffer, perMille: number) => Math.floor((raw.length * perMille) / 1000);
const latin1 = (text: string) => Buffer.from(text, 'latin1');

/** Where the header section ends (the first empty line), or the end. */
function headerEnd(raw: Buffer): number {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  const ends = [crlf, lf].filter((i) => i >= 0);
  return ends.length === 0 ? raw.length : Math.min(...ends);
}

function boundaries(raw: Buffer): string[] {
  const text = raw.toString('latin1');
  return [...new Set([...text.matchAll(/boundary="?([^";\r\n]+)"?/gi)].map((m) => m[1]!))];
}

function damageBoundary(raw: Buffer, m: Extract<MimeMutation, { kind: 'boundary' }>): Buffer {
  const list = boundaries(raw);
  if (list.length === 0) return raw;
  const boundary = list[m.occurrence % list.length]!;
  let text = raw.toString('latin1');
  const delimiter = `--${boundary}`;
  const lines = text.split('\n');
  const indexes = lines.flatMap((line, i) => (line.startsWith(delimiter) ? [i] : []));
  const pick = indexes[m.occurrence % Math.max(1, indexes.length)];
  switch (m.damage) {
    case 'drop-line':
      if (pick !== undefined) lines.splice(pick, 1);
      return latin1(lines.join('\n'));
    case 'alter':
      if (pick !== undefined) lines[pick] = lines[pick]!.replace(boundary, `${boundary.slice(0, -1)}${boundary.endsWith('x') ? 'y' : 'x'}`);
      return latin1(lines.join('\n'));
    case 'unclosed':
      return latin1(text.split(`${delimiter}--`).join(''));
    case 'duplicate':
      if (pick !== undefined) lines.splice(pick, 0, lines[pick]!, lines[pick]!);
      return latin1(lines.join('\n'));
    case 'no-dashes':
      text = text.split(delimiter).join(boundary);
      return latin1(text);
    case 'drop-parameter':
      return latin1(text.replace(/;\s*boundary="?[^";\r\n]+"?/i, ''));
  }
}

function damageHeader(raw: Buffer, m: Extract<MimeMutation, { kind: 'header' }>): Buffer {
  const end = headerEnd(raw);
  const head = raw.subarray(0, end).toString('latin1');
  const rest = raw.subarray(end);
  const lines = head.split(/\r?\n/);
  const i = Math.floor((lines.length * m.at) / 1001);
  switch (m.damage) {
    case 'fold-first-line':
      return Buffer.concat([latin1(' '), raw]);
    case 'empty-continuation':
      lines.splice(i + 1, 0, ' ', '\t');
      break;
    case 'bare-cr':
      lines[i] = `${lines[i] ?? ''}\rX-Injected: yes`;
      break;
    case 'no-blank-line':
      // rest starts with the empty line's own line break after the last header's.
      return Buffer.concat([latin1(head), rest.subarray(rest[0] === 0x0d ? 2 : 1)]);
    case 'colonless-line':
      lines.splice(i, 0, 'this line has no colon');
      break;
    case 'nul-in-name':
      lines.splice(i, 0, 'X-Bad\0Name: value');
      break;
    case 'duplicate-from':
      lines.splice(i, 0, 'From: Second Sender <second@fabrikam.example>');
      break;
    case 'duplicate-content-type':
      lines.splice(i, 0, 'Content-Type: multipart/mixed; boundary="never-used"');
      break;
  }
  return Buffer.concat([latin1(lines.join('\r\n')), rest]);
}

function damageEncoding(raw: Buffer, m: Extract<MimeMutation, { kind: 'encoding' }>): Buffer {
  const text = raw.toString('latin1');
  const replaceFirst = (pattern: RegExp, replacement: string, otherwise: () => string) => (pattern.test(text) ? text.replace(pattern, replacement) : otherwise());
  const end = headerEnd(raw);
  const withHeader = (line: string) => latin1(`${text.slice(0, end)}\r\n${line}${text.slice(end)}`);
  switch (m.damage) {
    case 'base64-of-text':
      return latin1(replaceFirst(/Content-Transfer-Encoding:[^\r\n]*/i, 'Content-Transfer-Encoding: base64', () => withHeader('Content-Transfer-Encoding: base64').toString('latin1')));
    case 'bad-quoted-printable':
      return latin1(replaceFirst(/Content-Transfer-Encoding:[^\r\n]*/i, 'Content-Transfer-Encoding: quoted-printable', () => withHeader('Content-Transfer-Encoding: quoted-printable').toString('latin1')).replace(/\r?\n\r?\n/, '\r\n\r\n=ZZ=\r\n=G=0=\r\n'));
    case 'unknown-charset':
      return latin1(replaceFirst(/charset="?[^";\s]+"?/i, 'charset="x-no-such-charset"', () => withHeader('Content-Type: text/plain; charset="x-no-such-charset"').toString('latin1')));
    case 'utf-7':
      return latin1(replaceFirst(/charset="?[^";\s]+"?/i, 'charset=utf-7', () => withHeader('Content-Type: text/plain; charset=utf-7').toString('latin1')).replace(/\r?\n\r?\n/, '\r\n\r\n+AGEAYgBj-+ZZZZ-+\r\n'));
    case 'broken-encoded-word':
      return latin1(replaceFirst(/^Subject:[^\r\n]*/im, 'Subject: =?utf-8?B?!!!not base64===?= =?unknown?Q?=ZZ?= =?utf-8?X?x?=', () => withHeader('Subject: =?utf-8?B?!!!?=').toString('latin1')));
    case 'unknown-transfer-encoding':
      return latin1(replaceFirst(/Content-Transfer-Encoding:[^\r\n]*/i, 'Content-Transfer-Encoding: x-uuencode-ish', () => withHeader('Content-Transfer-Encoding: x-gzip64').toString('latin1')));
    case 'binary-8bit':
      return Buffer.concat([raw.subarray(0, end), Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc, 0x00, 0xff, 0x0d, 0x0a]), raw.subarray(end)]);
  }
}

/** `depth` levels of multipart/mixed (or message/rfc822 attachments) around the message. */
function nest(raw: Buffer, depth: number, as: 'multipart' | 'rfc822'): Buffer {
  let body = raw;
  for (let level = 0; level < depth; level++) {
    const boundary = `nest-${level}`;
    const inner = as === 'rfc822' ? Buffer.concat([latin1('Content-Type: message/rfc822\r\n\r\n'), body]) : body;
    body = Buffer.concat([latin1(`From: nest@fabrikam.example\r\nDate: Fri, 01 Mar 2024 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n\r\n--${boundary}\r\n`), inner, latin1(`\r\n--${boundary}--\r\n`)]);
  }
  return body;
}

export function applyMutation(raw: Buffer, m: MimeMutation): Buffer {
  switch (m.kind) {
    case 'truncate':
      return raw.subarray(0, position(raw, m.at));
    case 'flip': {
      if (raw.length === 0) return raw;
      const copy = Buffer.from(raw);
      copy[Math.min(copy.length - 1, position(raw, m.at))] = m.byte;
      return copy;
    }
    case 'insert': {
      const i = position(raw, m.at);
      return Buffer.concat([raw.subarray(0, i), latin1(m.bytes), raw.subarray(i)]);
    }
    case 'delete': {
      const i = position(raw, m.at);
      return Buffer.concat([raw.subarray(0, i), raw.subarray(i + m.length)]);
    }
    case 'boundary':
      return damageBoundary(raw, m);
    case 'lineEnds': {
      const [from, to] = [position(raw, Math.min(m.from, m.to)), position(raw, Math.max(m.from, m.to))];
      return Buffer.concat([raw.subarray(0, from), latin1(raw.subarray(from, to).toString('latin1').replace(/\r\n/g, m.style)), raw.subarray(to)]);
    }
    case 'header':
      return damageHeader(raw, m);
    case 'encoding':
      return damageEncoding(raw, m);
    case 'hugeLine': {
      const i = position(raw, m.at);
      return Buffer.concat([raw.subarray(0, i), Buffer.alloc(m.length, m.fill), raw.subarray(i)]);
    }
    case 'nest':
      return nest(raw, m.depth, m.as);
  }
}

export function sourceBytes(seeds: readonly Buffer[], source: MimeSource): Buffer {
  return source.mutations.reduce(applyMutation, seeds[source.seed]!);
}
