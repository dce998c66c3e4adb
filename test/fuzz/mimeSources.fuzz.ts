import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { isMailError } from '../../shared/errors.js';
import type { DeliveredMessage } from '../../shared/mail/incoming.js';
import { unparseableIdHash } from '../../shared/mail/messageIds.js';
import { parseMessage } from '../../shared/mail/parse.js';
import { pollMailbox } from '../../shared/receive/pollMailbox.js';
import { STATE_NAMES } from '../../shared/state/storage.js';
import { CORPUS_PROFILE, corpus, pseudoRandomBytes } from '../fixtures/corpus.js';
import { HOOK_SECRET, ReceiveHarness, composeEml, dropEml } from '../support/receiveHarness.js';
import { mimeSource, sourceBytes, type MimeMutation, type MimeSource } from './mimeMutations.js';
import { recordProcessFailures, secretsIn, table } from './report.js';

/*
 * 1,000 malformed MIME sources, each a real message (the corpus, and composed ones) mutated by
 * fast-check, through the parser and through the real poll: a file-transport profile whose inbox
 * they are dropped into, 50 a poll, delivering to the signed webhook with state in Azurite. Every
 * source must end delivered or dead-lettered, once, or be recognised as a duplicate of one that
 * did; no poll may fail, nothing may escape as an unhandled rejection or uncaught exception.
 */

const processFailures = recordProcessFailures();
const BATCHES = Number(process.env.FUZZ_MIME_BATCHES ?? 20);
const BATCH = 50;
const PARSES = Number(process.env.FUZZ_MIME_PARSES ?? 1000);
const seedOptions = process.env.FUZZ_SEED === undefined ? {} : { seed: Number(process.env.FUZZ_SEED), ...(process.env.FUZZ_PATH && { path: process.env.FUZZ_PATH }) };

/** Messages of shapes the corpus has few of: deep structure, an attached message, a large attachment (streamed to blob storage). */
async function composedSeeds(): Promise<Buffer[]> {
  const inner = await composeEml({ from: 'inner@fabrikam.example', to: CORPUS_PROFILE.mailbox, subject: 'Forwarded', text: 'the original', messageId: '<inner@fabrikam.example>' });
  return Promise.all([
    composeEml({
      from: 'Nested <nested@fabrikam.example>',
      to: CORPUS_PROFILE.mailbox,
      subject: 'Nested parts',
      messageId: '<nested@fabrikam.example>',
      text: 'plain part',
      html: '<p>html part <img src="cid:logo"></p>',
      attachments: [
        { filename: 'logo.png', content: pseudoRandomBytes('logo', 300), contentType: 'image/png', cid: 'logo' },
        { filename: 'forwarded.eml', content: inner, contentType: 'message/rfc822' },
        { filename: 'notes.txt', content: 'quoted-printable = text\u00e9', contentTransferEncoding: 'quoted-printable' },
      ],
    }),
    composeEml({ from: 'big@fabrikam.example', to: CORPUS_PROFILE.mailbox, subject: 'Large attachment', messageId: '<big@fabrikam.example>', text: 'see attached', attachments: [{ filename: 'dump.bin', content: pseudoRandomBytes('dump', 400 * 1024) }] }),
    composeEml({ from: 'many@fabrikam.example', to: CORPUS_PROFILE.mailbox, subject: 'Many small parts', text: 'parts', attachments: Array.from({ length: 12 }, (_, i) => ({ filename: `part-${i}.txt`, content: `part ${i}\n` })) }),
  ]);
}

/** How a mutated source is shown when fast-check prints a counterexample: the seed's name and the mutations (not megabytes of bytes). */
const described = (names: readonly string[]) => (s: MimeSource) => Object.assign(s, { [fc.toStringMethod]: () => `${names[s.seed]} ${JSON.stringify(s.mutations, (k, v: unknown) => (k === 'bytes' && typeof v === 'string' ? JSON.stringify(v) : v))}` });

interface Tally {
  sources: number;
  delivered: number;
  deadLettered: number;
  duplicates: number;
  lost: number;
  twice: number;
}

describe('malformed MIME sources, through the parser and the poll', () => {
  const h = new ReceiveHarness();
  let seeds: Buffer[] = [];
  let names: string[] = [];
  let batch = 0;
  const tallies = new Map<MimeMutation['kind'], Tally>();
  const totals: Tally = { sources: 0, delivered: 0, deadLettered: 0, duplicates: 0, lost: 0, twice: 0 };

  before(async () => {
    await h.start();
    const messages = await corpus();
    const composed = await composedSeeds();
    seeds = [...messages.map((m) => m.raw), ...composed];
    names = [...messages.map((m) => m.name), 'composed-nested', 'composed-large-attachment', 'composed-many-parts'];
  });
  after(() => h.stop());

  const sources = () => mimeSource(seeds.length).map(described(names));

  it(`the parser answers each of ${PARSES} a message or EPARSE, the same whatever the chunking`, async () => {
    // A receive time given, as every reader gives one: without it a message with no Date is stamped with the time it was parsed.
    const ctx = { profile: CORPUS_PROFILE, via: 'file' as const, providerId: 'fuzz.eml', receivedAt: new Date('2024-03-01T09:00:00Z') };
    const outcome = (input: Buffer | NodeJS.ReadableStream) =>
      parseMessage(input, ctx).then(
        (message) => ({ parsed: JSON.stringify(message) }),
        (error: unknown) => ({ refused: isMailError(error) ? error.code : `not a MailError: ${String(error)}` }),
      );
    await fc.assert(
      fc.asyncProperty(sources(), fc.integer({ min: 1, max: 4096 }), async (source, chunk) => {
        const raw = sourceBytes(seeds, source);
        const started = Date.now();
        if (process.env.FUZZ_VERBOSE === 'all') process.stderr.write(`parse: ${raw.length} bytes, chunk ${chunk}: ${fc.stringify(source)}\n`);
        const whole = await outcome(raw);
        // FUZZ_VERBOSE: each source that took a second or more, to find what is slow to parse.
        if (process.env.FUZZ_VERBOSE && Date.now() - started >= 1000) process.stderr.write(`slow parse: ${Date.now() - started} ms, ${raw.length} bytes: ${fc.stringify(source)}\n`);
        if ('refused' in whole) assert.equal(whole.refused, 'EPARSE');
        // Chunks of at least 1/2000 of the source, so a megabyte is not fed a byte at a time.
        const size = Math.max(chunk, Math.ceil(raw.length / 2000));
        const chunks = Array.from({ length: Math.ceil(raw.length / size) }, (_, i) => raw.subarray(i * size, (i + 1) * size));
        const chunkedAt = Date.now();
        const chunked = await outcome(Readable.from(chunks));
        if (process.env.FUZZ_VERBOSE && Date.now() - chunkedAt >= 1000) process.stderr.write(`slow parse in ${chunks.length} chunks: ${Date.now() - chunkedAt} ms, ${raw.length} bytes: ${fc.stringify(source)}\n`);
        assert.deepEqual(chunked, whole, 'parsing the same bytes in other chunks gave another answer');
      }),
      // A parse that never ends is a poll that never ends: fast-check fails it past this, and shrinks it.
      { numRuns: PARSES, timeout: 60_000, includeErrorInReport: true, ...seedOptions },
    );
  });

  /**
   * One poll of `batch` sources in a profile of their own, then a second: what each source became,
   * told by the webhook's deliveries, the dead-letter blobs and the poll's log. Answers the problems.
   */
  const pollBatch = async (batchSources: readonly MimeSource[]): Promise<string[]> => {
    const profile = `fuzz${++batch}`;
    const inbox = h.folder(profile);
    const files = batchSources.map((source, i) => {
      const name = `s${String(i).padStart(3, '0')}.eml`;
      dropEml(inbox, name, sourceBytes(seeds, source), i);
      return { name, source, bytes: sourceBytes(seeds, source) };
    });
    const runtime = h.runtime({ [profile]: h.fileProfile(inbox, { afterFetch: 'none' }) });
    const logged = h.logs.length;
    const problems: string[] = [];
    try {
      const first = await pollMailbox(runtime, profile);
      const second = await pollMailbox(runtime, profile);
      if (first.status !== 'completed') problems.push(`the poll ${first.status}: ${JSON.stringify(first.error)}`);
      if (second.status !== 'completed' || second.delivered + second.deadLettered + second.duplicates > 0) problems.push(`the second poll was not empty: ${JSON.stringify(second)}`);

      const delivered = h.webhook.received.map((hook) => JSON.parse(hook.body) as DeliveredMessage).filter((m) => m.profile === profile);
      const container = await h.state.account.container(STATE_NAMES.deadLetter);
      const deadLettered: string[] = [];
      for await (const blob of container.listBlobsFlat({ prefix: `${profile}/` })) {
        if (!blob.name.endsWith('.json')) continue;
        const record = JSON.parse((await container.getBlockBlobClient(blob.name).downloadToBuffer()).toString()) as { providerId: string; source?: { name: string } };
        deadLettered.push(record.providerId);
        // A dead-letter keeps the raw source, all of it, for a person to look at.
        const file = files.find((f) => f.name === record.providerId);
        const kept = record.source && (await container.getBlockBlobClient(record.source.name).downloadToBuffer());
        if (file && (!kept || !kept.equals(file.bytes))) problems.push(`${file.name} (${fc.stringify(file.source)}) was dead-lettered with ${kept ? `${kept.length} of its ${file.bytes.length} bytes` : 'no source'}`);
      }
      const events = h.logs.slice(logged).flatMap((line) => {
        try {
          return [JSON.parse(line) as { operation?: string; profile?: string; providerId?: string; result?: string; id?: string }];
        } catch {
          return [];
        }
      });
      const duplicates = events.filter((e) => e.operation === 'poll.message' && e.profile === profile && e.result === 'duplicate');
      if (first.delivered !== delivered.length || first.deadLettered !== deadLettered.length || first.duplicates !== duplicates.length) {
        problems.push(`the poll counted ${first.delivered} delivered, ${first.deadLettered} dead-lettered, ${first.duplicates} duplicates; found ${delivered.length}, ${deadLettered.length}, ${duplicates.length}`);
      }
      const ids = delivered.map((m) => m.id);
      if (new Set(ids).size !== ids.length) problems.push('a stable id was delivered twice');
      const unparseableId = (bytes: Buffer) => unparseableIdHash({ name: profile, mailbox: runtime.profile(profile).mailbox }).update(bytes).digest('hex');
      const handledIds = new Set([...ids, ...files.filter((f) => deadLettered.includes(f.name)).map((f) => unparseableId(f.bytes))]);

      for (const file of files) {
        const outcomes = [
          ...delivered.filter((m) => m.provider.id === file.name).map(() => 'delivered' as const),
          ...deadLettered.filter((p) => p === file.name).map(() => 'deadLettered' as const),
          ...duplicates.filter((e) => e.providerId === file.name).map(() => 'duplicates' as const),
        ];
        const kinds = [...new Set(file.source.mutations.map((m) => m.kind))];
        const count = (key: keyof Tally, n = 1) => {
          totals[key] += n;
          for (const kind of kinds) {
            const tally = tallies.get(kind) ?? { sources: 0, delivered: 0, deadLettered: 0, duplicates: 0, lost: 0, twice: 0 };
            tally[key] += n;
            tallies.set(kind, tally);
          }
        };
        count('sources');
        for (const outcome of outcomes) count(outcome);
        const show = `${file.name} (${fc.stringify(file.source)})`;
        if (outcomes.length === 0) {
          count('lost');
          problems.push(`${show} was neither delivered, dead-lettered nor a duplicate`);
        } else if (outcomes.length > 1) {
          count('twice');
          problems.push(`${show} was ${outcomes.join(' and ')}`);
        } else if (outcomes[0] === 'duplicates') {
          // A duplicate is only one of a message handled in this poll: parsed (its id), or unparseable (the hash of its bytes).
          const id = duplicates.find((e) => e.providerId === file.name)!.id ?? unparseableId(file.bytes);
          if (!handledIds.has(id)) problems.push(`${show} was taken for a duplicate of nothing handled`);
        }
      }
      const leaked = secretsIn(h.logs.slice(logged).join('\n'), { 'the webhook signing secret': HOOK_SECRET });
      if (leaked.length > 0) problems.push(`${leaked.join(', ')} in the log`);
    } finally {
      await runtime.close();
    }
    return problems;
  };

  it(`every one of ${BATCHES * BATCH} mutated sources, polled ${BATCH} at a time, is delivered or dead-lettered once (or is a duplicate of one that was), and no poll fails`, async () => {
    let failing: MimeSource[] = [];
    let current: MimeSource[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(sources(), { minLength: BATCH, maxLength: BATCH }), async (batchSources) => {
          current = batchSources;
          const problems = await pollBatch(batchSources);
          if (problems.length > 0) {
            failing = batchSources.filter((s, i) => problems.some((p) => p.startsWith(`s${String(i).padStart(3, '0')}.eml`)));
            assert.fail(problems.join('\n'));
          }
        }),
        // A batch is a poll of 50: it is reported, not shrunk; the sources at fault are shrunk alone
        // below. A poll that never ends fails past the timeout, and then every source of its batch is tried alone.
        { numRuns: BATCHES, endOnFailure: true, timeout: 300_000, includeErrorInReport: true, ...seedOptions },
      );
    } catch (batchError) {
      if (failing.length === 0) failing = current;
      if (failing.length > 0) {
        await fc.assert(
          fc.asyncProperty(sources(), async (source) => {
            const problems = await pollBatch([source]);
            assert.deepEqual(problems, []);
          }),
          { examples: failing.map((s) => [s]), numRuns: failing.length, timeout: 60_000, includeErrorInReport: true },
        );
      }
      throw batchError;
    } finally {
      const rows: Array<Array<string | number>> = [...tallies].sort(([a], [b]) => a.localeCompare(b)).map(([kind, t]) => [kind, t.sources, t.delivered, t.deadLettered, t.duplicates, t.lost, t.twice]);
      rows.push(['all sources', totals.sources, totals.delivered, totals.deadLettered, totals.duplicates, totals.lost, totals.twice]);
      console.log(`\nMIME fuzz summary (${batch} polls; a source with mutations of several kinds counts in each kind's row; unhandled rejections ${processFailures.unhandledRejections.length}, uncaught exceptions ${processFailures.uncaughtExceptions.length})\n${table(['mutation', 'sources', 'delivered', 'dead-lettered', 'duplicate', 'lost', 'twice'], rows)}\n`);
    }
    assert.equal(totals.sources, BATCHES * BATCH);
    assert.equal(totals.lost + totals.twice, 0);
    // Both outcomes were exercised: the mutations neither left everything parseable nor broke everything.
    assert.ok(totals.delivered > 0 && totals.deadLettered > 0, `${totals.delivered} delivered, ${totals.deadLettered} dead-lettered`);
  });

  it('nothing escaped the parser or the poll: no unhandled rejection, no uncaught exception', () => {
    assert.deepEqual(processFailures, { unhandledRejections: [], uncaughtExceptions: [] });
  });
});
