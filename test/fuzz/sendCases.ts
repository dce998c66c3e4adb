import fc from 'fast-check';
import { EMAILS, VALID_ADDRESS_STRINGS, lineBreak } from '../support/sendBodies.js';

/*
 * Generated POST /api/send requests that are all invalid by construction: each is a valid
 * request (right credentials, a body every check accepts) with one deliberate mutation of one
 * category. `target` names what the mutation broke, so the answer can be held to naming it.
 */

type Json = Record<string, unknown>;

export const MAILBOX = 'support@contoso.com';
/** Allowed by both sending profiles, and by the callers without an allowedFrom of their own. */
export const TEAM_ADDRESS = 'team@desk.contoso.com';
export const SENDING_PROFILES = ['graph', 'smtp'] as const;
/** A profile with no send section. */
export const RECEIVE_ONLY_PROFILE = 'archive';

/**
 * desk: a key caller of both sending profiles whose allowedFrom is the mailbox only; helpdesk: an
 * Entra caller of `graph` whose tokens must carry Mail.Send; ops: an admin key caller.
 */
export type Who = 'desk' | 'helpdesk' | 'ops';

/** Credentials that are wrong, named here and made real by the suite once its peers run. */
export const WRONG_KEYS = ['desk-plus-one', 'desk-minus-one', 'desk-one-changed', 'client-secret', 'secret-name', 'empty'] as const;
export const WRONG_TOKENS = ['stranger-app', 'expired', 'other-audience', 'other-issuer', 'unpublished-key', 'without-role', 'not-a-jwt'] as const;

export type Credential =
  | { kind: 'as'; who: Who }
  | { kind: 'none' }
  | { kind: 'key'; key: (typeof WRONG_KEYS)[number] | { literal: string } }
  | { kind: 'bearer'; token: (typeof WRONG_TOKENS)[number]; alsoKeyOf?: Who }
  | { kind: 'authorization'; value: string };

export const CATEGORIES = ['wrong type', 'missing field', 'huge value', 'deep nesting', 'control character', 'unicode', 'invalid base64', 'unknown profile', 'from not allowed', 'caller credentials', 'request shape'] as const;
export type Category = (typeof CATEGORIES)[number];

export type CaseBody = { json: Json } | { text: string } | { bytes: Uint8Array };

export interface SendCase {
  category: Category;
  /** What was broken: the problem's `field` must be it or below it. Absent for a refused caller (a code, no field). */
  target?: string;
  /** What was done, for the summary and a shrunk counterexample. */
  mutation: string;
  credential: Credential;
  contentType?: string;
  query: string;
  headers: Record<string, string>;
  body: CaseBody;
}

/** A valid request: `who` and its credentials, a body its profile and allowedFrom accept. */
interface ValidCase {
  who: Who;
  contentType?: string;
  query: string;
  headers: Record<string, string>;
  body: Json;
}

/** C0 controls and DEL (TAB aside: it is folding whitespace, which headers may carry), and line breaks. */
const CONTROLS = [...Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).filter((c) => c !== '\t'), '\x7f'];
/** What an HTTP header value can carry at all (undici refuses NUL, CR and LF, and trims whitespace). */
const HEADER_CONTROLS = CONTROLS.filter((c) => !['\0', '\r', '\n'].includes(c));
const controlChar = fc.oneof(fc.constantFrom(...CONTROLS), lineBreak);

const plainText = (maxLength: number) => fc.string({ unit: 'grapheme', maxLength }).filter((s) => !/[\x00-\x08\x0a-\x1f\x7f]/.test(s));
const address = fc.oneof(fc.constantFrom(...VALID_ADDRESS_STRINGS), fc.record({ name: fc.constantFrom('Grace Hopper', 'Desk', 'Zoë'), address: fc.constantFrom(...EMAILS) }, { requiredKeys: ['address'] }));
const addressList = fc.oneof(address, fc.array(address, { minLength: 1, maxLength: 3 }));
const base64 = fc.uint8Array({ minLength: 1, maxLength: 24 }).map((bytes) => Buffer.from(bytes).toString('base64'));
const attachment = fc.record(
  { filename: fc.constantFrom('report.pdf', 'notes 1.txt', 'Zoë.csv', '.hidden'), contentType: fc.constantFrom('application/pdf', 'text/plain', 'image/svg+xml'), content: base64, contentId: fc.constantFrom('logo', 'logo@example.com') },
  { requiredKeys: ['filename', 'content'] },
);
const headerName = fc.stringMatching(/^X-[A-Za-z0-9]{1,10}$/);

function fromFor(who: Who): fc.Arbitrary<unknown> {
  const mailbox = [MAILBOX, `Support <${MAILBOX}>`, { name: 'Support', address: MAILBOX }];
  // desk's own allowedFrom is the mailbox; the profiles also allow *@desk.contoso.com.
  return fc.constantFrom(...(who === 'desk' ? mailbox : [...mailbox, TEAM_ADDRESS, `Team <${TEAM_ADDRESS}>`]));
}

function profileFor(who: Who): fc.Arbitrary<string | undefined> {
  // helpdesk has one profile and may leave it out; the others hold two and must name one.
  return who === 'helpdesk' ? fc.constantFrom(undefined, 'graph') : fc.constantFrom(...SENDING_PROFILES);
}

const bodyFor = (who: Who) =>
  fc
    .record(
      {
        profile: profileFor(who),
        from: fromFor(who),
        to: addressList,
        cc: fc.array(address, { maxLength: 2 }),
        bcc: addressList,
        replyTo: address,
        subject: plainText(40),
        text: fc.string({ maxLength: 40 }),
        html: fc.constant('<p>Hello</p>'),
        importance: fc.constantFrom('low', 'normal', 'high'),
        headers: fc.dictionary(headerName, plainText(20), { maxKeys: 3 }),
        attachments: fc.array(attachment, { maxLength: 2 }),
      },
      // from always: a profile's own mailbox is not every caller's to send as.
      { requiredKeys: ['profile', 'from', 'to', 'text'] },
    )
    // An optional field drawn as undefined is left out, as a client would.
    .map((body) => Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined)) as Json);

/** A valid request of any mode: sync, queued, with an Idempotency-Key. */
export const validCase: fc.Arbitrary<ValidCase> = fc.constantFrom<Who>('desk', 'helpdesk', 'ops').chain((who) =>
  fc.record({
    who: fc.constant(who),
    contentType: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/merge-patch+json', undefined),
    query: fc.constantFrom('', '?mode=sync', '?mode=queued'),
    headers: fc.record({ 'idempotency-key': fc.uuid(), prefer: fc.constantFrom('respond-async', 'return=minimal') }, { requiredKeys: [] }),
    body: bodyFor(who),
  }),
);

type Mutation = { target?: string; mutation: string } & Partial<Pick<SendCase, 'credential' | 'contentType' | 'query' | 'headers' | 'body'>>;

const mutate = (category: Category, mutations: (valid: ValidCase) => fc.Arbitrary<Mutation>): fc.Arbitrary<SendCase> =>
  validCase.chain((valid) =>
    mutations(valid).map(({ target, mutation, ...changed }): SendCase =>
      printable({
        category,
        ...(target !== undefined && { target }),
        mutation,
        credential: { kind: 'as', who: valid.who },
        ...(valid.contentType !== undefined && { contentType: valid.contentType }),
        query: valid.query,
        headers: valid.headers,
        body: { json: valid.body },
        ...changed,
      }),
    ),
  );

const clip = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max)}... (${text.length} characters)`);

/** A counterexample as fast-check prints it: a megabyte body is shown by its start and length. */
function printable(c: SendCase): SendCase {
  const body = 'json' in c.body ? JSON.stringify(c.body.json) : 'text' in c.body ? c.body.text : `bytes ${Buffer.from(c.body.bytes).toString('hex')}`;
  const shown = { ...c, headers: Object.fromEntries(Object.entries(c.headers).map(([k, v]) => [k, clip(v, 80)])), body: clip(body, 600) };
  return Object.assign(c, { [fc.toStringMethod]: () => JSON.stringify(shown) });
}

const withField = (body: Json, field: string, value: unknown): CaseBody => ({ json: { ...body, [field]: value } });
const without = (body: Json, ...fields: string[]): Json => Object.fromEntries(Object.entries(body).filter(([k]) => !fields.includes(k)));
const insertAt = (text: string, at: number, inserted: string) => {
  const i = at % (text.length + 1);
  return `${text.slice(0, i)}${inserted}${text.slice(i)}`;
};
/** The body's JSON with `"field": <raw JSON>` in place of that field: for values JSON.stringify would recurse over. */
const withRawField = (body: Json, field: string, raw: string): CaseBody => {
  const rest = JSON.stringify(without(body, field));
  return { text: `{${JSON.stringify(field)}:${raw}${rest === '{}' ? '' : ','}${rest.slice(1)}` };
};

const LONE_SURROGATE = /([\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff])/;
/** A query value as a client would send it; a lone surrogate, which has no UTF-8, as the bytes of its code point (which the URL parser takes as U+FFFD). */
const queryValue = (value: string) => value.split(LONE_SURROGATE).map((part) => (LONE_SURROGATE.test(part) ? '%ED%BF%BF' : encodeURIComponent(part))).join('');

const ADDRESS_FIELDS = ['from', 'to', 'cc', 'bcc', 'replyTo'] as const;

const wrongType = mutate('wrong type', (v) => {
  const wrong: Record<string, unknown[]> = {
    profile: [7, true, [], {}, ['graph']],
    from: [7, false, null, [MAILBOX], {}, { address: 7 }, { name: 7, address: MAILBOX }],
    to: [7, true, null, {}, [7], [[MAILBOX]], [null]],
    cc: [0, null, [{}], [true]],
    bcc: [1.5, [[]], { address: null }],
    replyTo: [false, [7], null],
    subject: [7, true, null, [], {}, ['Hello']],
    text: [7, false, null, ['Hello'], { text: 'Hello' }],
    html: [7, null, ['<p>']],
    importance: [1, true, null, ['high']],
    headers: [[], 'X-A: 1', null, 5, { 'X-A': 5 }, { 'X-A': null }, { 'X-A': ['1'] }, { 'X-A': {} }],
    attachments: ['none', {}, null, 5, [5], [null], [{ filename: 5, content: 'QUJD' }], [{ filename: 'a.txt', content: 5 }], [{ filename: 'a.txt', content: 'QUJD', contentType: 5 }], [{ filename: 'a.txt', content: 'QUJD', contentId: 5 }]],
  };
  return fc.constantFrom(...Object.keys(wrong)).chain((field) => fc.constantFrom(...wrong[field]!).map((value): Mutation => ({ target: field, mutation: `${field} = ${JSON.stringify(value)}`, body: withField(v.body, field, value) })));
});

const missingField = mutate('missing field', (v) => {
  const choices: Mutation[] = [
    { target: 'to', mutation: 'no to, cc or bcc', body: { json: without(v.body, 'to', 'cc', 'bcc') } },
    { target: 'text', mutation: 'no text, html or attachments', body: { json: without(v.body, 'text', 'html', 'attachments') } },
    { target: 'attachments', mutation: 'an attachment without content', body: withField(v.body, 'attachments', [{ filename: 'a.txt' }]) },
    { target: 'attachments', mutation: 'an attachment without filename', body: withField(v.body, 'attachments', [{ content: 'QUJD' }]) },
    { target: 'from', mutation: 'an address object without address', body: withField(v.body, 'from', { name: 'Support' }) },
    { target: 'to', mutation: 'an empty list of recipients', body: { json: { ...without(v.body, 'cc', 'bcc'), to: [] } } },
  ];
  // A caller of two profiles must name one; helpdesk has only one to leave out.
  if (v.who !== 'helpdesk') choices.push({ target: 'profile', mutation: 'no profile', body: { json: without(v.body, 'profile') } });
  return fc.constantFrom(...choices);
});

/** A string of `length` characters of one kind (repeated rather than drawn one by one, which would be slow at these sizes). */
const long = (minLength: number, maxLength: number) => fc.tuple(fc.integer({ min: minLength, max: maxLength }), fc.constantFrom('a', 'é', '😀', ' ')).map(([n, c]) => c.repeat(n));

const hugeValue = mutate('huge value', (v) =>
  fc.oneof(
    long(999, 20_000).map((s): Mutation => ({ target: 'subject', mutation: `subject of ${s.length} characters`, body: withField(v.body, 'subject', s) })),
    long(999, 5_000).map((s): Mutation => ({ target: 'headers', mutation: `header value of ${s.length} characters`, body: withField(v.body, 'headers', { 'X-Long': s }) })),
    long(256, 2_000).map((s): Mutation => ({ target: 'attachments', mutation: `filename of ${s.length} characters`, body: withField(v.body, 'attachments', [{ filename: s, content: 'QUJD' }]) })),
    long(201, 2_000).map((s): Mutation => ({ target: 'attachments', mutation: `contentId of ${s.length} characters`, body: withField(v.body, 'attachments', [{ filename: 'a.png', content: 'QUJD', contentId: s.replace(/[^\x21-\x7e]/g, 'x') }]) })),
    fc.tuple(fc.constantFrom(...ADDRESS_FIELDS.slice(1)), fc.integer({ min: 21, max: 5_000 })).map(([field, n]): Mutation => ({ target: field, mutation: `${n} addresses in ${field}`, body: { json: { ...without(v.body, 'to', 'cc', 'bcc'), to: MAILBOX, [field]: Array.from({ length: n }, (_, i) => `r${i}@example.com`) } } })),
    fc.integer({ min: 6, max: 1_000 }).map((n): Mutation => ({ target: 'attachments', mutation: `${n} attachments`, body: withField(v.body, 'attachments', Array.from({ length: n }, (_, i) => ({ filename: `a${i}.txt`, content: 'QUJD' }))) })),
    fc.integer({ min: 11, max: 2_000 }).map((n): Mutation => ({ target: 'headers', mutation: `${n} custom headers`, body: withField(v.body, 'headers', Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-H${i}`, 'v']))) })),
    fc.integer({ min: 65_537, max: 400_000 }).map((n): Mutation => ({ target: 'html', mutation: `an html body of ${n} bytes`, body: withField(v.body, 'html', 'x'.repeat(n)) })),
    fc.integer({ min: 65_537, max: 400_000 }).map((n): Mutation => ({ target: 'text', mutation: `a text body of ${n} bytes`, body: withField(v.body, 'text', 'x'.repeat(n)) })),
    fc.integer({ min: 49_200, max: 300_000 }).map((n): Mutation => ({ target: 'attachments', mutation: `an attachment of ${n} bytes`, body: withField(v.body, 'attachments', [{ filename: 'big.bin', content: Buffer.alloc(n, 7).toString('base64') }]) })),
    fc.integer({ min: 1_200_000, max: 2_000_000 }).map((n): Mutation => ({ target: 'body', mutation: `a request body of ${n} bytes`, body: withField(v.body, 'text', 'x'.repeat(n)) })),
    fc.integer({ min: 1_200_000, max: Number.MAX_SAFE_INTEGER }).map((n): Mutation => ({ target: 'body', mutation: `Content-Length: ${n}`, headers: { ...v.headers, 'content-length': String(n) } })),
  ),
);

/** `depth` levels of arrays or objects around a string, written out as JSON. */
const nested = fc.tuple(fc.integer({ min: 50, max: 20_000 }), fc.constantFrom('array', 'object')).map(([depth, shape]) => ({
  depth,
  shape,
  raw: shape === 'array' ? `${'['.repeat(depth)}"x"${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}"x"${'}'.repeat(depth)}`,
}));

const deepNesting = mutate('deep nesting', (v) =>
  fc.tuple(nested, fc.constantFrom(...ADDRESS_FIELDS, 'subject', 'headers', 'attachments', 'nested', 'text')).map(([n, field]): Mutation => {
    const raw = field === 'headers' ? `{"X-Deep":${n.raw}}` : field === 'attachments' ? `[{"filename":"a.txt","content":${n.raw}}]` : n.raw;
    return { target: field, mutation: `${field}: ${n.depth} nested ${n.shape}s`, body: withRawField(v.body, field, raw) };
  }),
);

/** Every body field a header is made from, with the control character put at `at` in its value. */
const headerBoundFields = (v: ValidCase, c: string, at: number): Mutation[] => {
  const put = (text: string) => insertAt(text, at, c);
  const b = v.body;
  return [
    { target: 'subject', mutation: 'in subject', body: withField(b, 'subject', put(String(b.subject ?? 'Hello'))) },
    { target: 'from', mutation: 'in from (string)', body: withField(b, 'from', put(`Support <${MAILBOX}>`)) },
    { target: 'from', mutation: 'in from.name', body: withField(b, 'from', { name: put('Support desk'), address: MAILBOX }) },
    { target: 'from', mutation: 'in from.address', body: withField(b, 'from', { address: put(MAILBOX) }) },
    ...(['to', 'cc', 'bcc', 'replyTo'] as const).flatMap((field): Mutation[] => [
      { target: field, mutation: `in ${field} (string)`, body: withField(b, field, [put('Ada Lovelace <ada@example.com>')]) },
      { target: field, mutation: `in ${field} (bare address)`, body: withField(b, field, put('ada@example.com')) },
      { target: field, mutation: `in ${field}.name`, body: withField(b, field, { name: put('Grace Hopper'), address: 'grace@example.org' }) },
      { target: field, mutation: `in ${field}.address`, body: withField(b, field, { address: put('grace@example.org') }) },
    ]),
    { target: 'headers', mutation: 'in a header name', body: withField(b, 'headers', { [put('X-Ticket')]: '42' }) },
    { target: 'headers', mutation: 'in a header value', body: withField(b, 'headers', { 'X-Ticket': put('ticket 42') }) },
    { target: 'attachments', mutation: 'in attachments.filename', body: withField(b, 'attachments', [{ filename: put('report.pdf'), content: 'QUJD' }]) },
    { target: 'attachments', mutation: 'in attachments.contentType', body: withField(b, 'attachments', [{ filename: 'report.pdf', contentType: put('application/pdf'), content: 'QUJD' }]) },
    { target: 'attachments', mutation: 'in attachments.contentId', body: withField(b, 'attachments', [{ filename: 'logo.png', contentId: put('logo'), content: 'QUJD' }]) },
  ];
};

const controlCharacter = mutate('control character', (v) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.tuple(controlChar, fc.nat()).chain(([c, at]) => fc.constantFrom(...headerBoundFields(v, c, at)).map((m) => ({ ...m, mutation: `${JSON.stringify(c)} ${m.mutation}` }))) },
    {
      weight: 1,
      // HTTP headers and the query: what undici lets a header value carry.
      arbitrary: fc.tuple(fc.constantFrom(...HEADER_CONTROLS), fc.nat()).chain(([c, at]) =>
        fc.constantFrom<Mutation>(
          { target: 'idempotency-key', mutation: `${JSON.stringify(c)} in Idempotency-Key`, headers: { ...v.headers, 'idempotency-key': insertAt('key-42', at, c) } },
          // Inside the value: the parameter-less media type is compared after trimming, like any header.
          { target: 'content-type', mutation: `${JSON.stringify(c)} in Content-Type`, contentType: insertAt('application/json', (at % 15) + 1, c) },
          { target: 'mode', mutation: `${JSON.stringify(c)} in ?mode`, query: `?mode=${queryValue(insertAt('queued', at, c))}` },
          { mutation: `${JSON.stringify(c)} in X-Api-Key`, credential: { kind: 'key', key: { literal: insertAt('desk-key', at, c) } } },
        ),
      ),
    },
  ),
);

/** Look-alikes, invisible and unpaired characters where only ASCII is taken. */
const UNICODE = ['\u0430', '\uff20', '\u200b', '\u200d', '\u202e', '\ufeff', '\u0301', '\ud800', '\udfff', '😀', '\u00a0', '\u0131', '\u2028'];

const unicode = mutate('unicode', (v) =>
  fc.tuple(fc.constantFrom(...UNICODE), fc.nat()).chain(([u, at]) => {
    const b = v.body;
    const put = (text: string) => insertAt(text, at, u);
    return fc.constantFrom<Mutation>(
      { target: 'to', mutation: `${JSON.stringify(u)} in an address`, body: withField(b, 'to', { address: put('grace@example.org') }) },
      { target: 'cc', mutation: `${JSON.stringify(u)} in an address string`, body: withField(b, 'cc', put('ada@example.com')) },
      { target: 'from', mutation: `${JSON.stringify(u)} in from`, body: withField(b, 'from', { address: put(MAILBOX) }) },
      { target: 'headers', mutation: `${JSON.stringify(u)} in a header name`, body: withField(b, 'headers', { [put('X-Ticket')]: '42' }) },
      { target: 'importance', mutation: `${JSON.stringify(u)} in importance`, body: withField(b, 'importance', put('high')) },
      { target: 'attachments', mutation: `${JSON.stringify(u)} in a content type`, body: withField(b, 'attachments', [{ filename: 'a.txt', contentType: put('text/plain'), content: 'QUJD' }]) },
      { target: 'attachments', mutation: `${JSON.stringify(u)} in a contentId`, body: withField(b, 'attachments', [{ filename: 'a.png', contentId: put('logo'), content: 'QUJD' }]) },
      // Base64 may hold whitespace, which to a JavaScript pattern includes U+00A0, U+FEFF and U+2028.
      ...(/\s/.test(u) ? [] : [{ target: 'attachments', mutation: `${JSON.stringify(u)} in base64`, body: withField(b, 'attachments', [{ filename: 'a.txt', content: put('QUJDRA==') }]) }]),
      { target: 'profile', mutation: `${JSON.stringify(u)} in profile`, body: withField(b, 'profile', put('graph')) },
      { target: 'mode', mutation: `${JSON.stringify(u)} in ?mode`, query: `?mode=${queryValue(put('queued'))}` },
      { target: 'idempotency-key', mutation: 'Latin-1 in Idempotency-Key', headers: { ...v.headers, 'idempotency-key': insertAt('key-42', at, 'é') } },
      { target: 'body', mutation: 'a byte order mark before the JSON', body: { text: `\ufeff${JSON.stringify(b)}` } },
      { target: 'body', mutation: 'the JSON as UTF-16', body: { bytes: Buffer.from(JSON.stringify(b), 'utf16le') } },
      { target: 'body', mutation: 'an overlong UTF-8 "{"', body: { bytes: Buffer.concat([Buffer.from([0xc1, 0xbb]), Buffer.from(JSON.stringify(b).slice(1))]) } },
      { target: 'body', mutation: 'a lone 0xFF byte for a quote', body: { bytes: Buffer.from(JSON.stringify(b).replace('"', '\xff'), 'latin1') } },
    );
  }),
);

const invalidBase64 = mutate('invalid base64', (v) =>
  fc.tuple(base64, fc.nat(), fc.constantFrom('-', '_', '*', '!', '.', ',', '%', ':', ';', 'é', '\u00ad', '=', '==', '===')).chain(([good, at, junk]) =>
    fc
      .constantFrom(
        { mutation: `${JSON.stringify(junk)} inserted`, content: insertAt(good.replace(/=+$/, ''), at, junk) + '='.repeat(good.length - good.replace(/=+$/, '').length) },
        { mutation: 'one character short', content: good.slice(0, -1) },
        { mutation: 'padding in the middle', content: `QUJD==${good}` },
        { mutation: 'a data: URL', content: `data:application/pdf;base64,${good}` },
        { mutation: 'base64url', content: `${Buffer.from(good, 'base64').toString('base64url')}_-` },
        { mutation: 'padding alone', content: '====' },
      )
      .map(({ mutation, content }): Mutation => ({ target: 'attachments', mutation, body: withField(v.body, 'attachments', [{ filename: 'a.bin', content }]) })),
  ),
);

const unknownProfile = mutate('unknown profile', (v) =>
  fc
    .oneof(
      fc.constantFrom('nobody', 'GRAPH', 'graph ', ' smtp', 'smtp\u0000', '__proto__', 'constructor', 'toString', 'hasOwnProperty', RECEIVE_ONLY_PROFILE, '*', '..', 'graph,smtp'),
      fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !(SENDING_PROFILES as readonly string[]).includes(s)),
      // The one a caller was not granted: helpdesk holds graph only.
      fc.constant(v.who === 'helpdesk' ? 'smtp' : 'nobody'),
    )
    .map((profile): Mutation => ({ target: 'profile', mutation: `profile ${JSON.stringify(profile)}`, body: withField(v.body, 'profile', profile) })),
);

const fromNotAllowed = mutate('from not allowed', (v) =>
  fc
    .constantFrom<unknown>(
      'ceo@contoso.com',
      'Support <ceo@contoso.com>',
      { name: 'Support', address: 'ceo@contoso.com' },
      'support@contoso.com.evil.example',
      'support@evil.example',
      'support@contoso.co',
      'x@sub.desk.contoso.com',
      'team@desk.contoso.com.evil.example',
      '"support@contoso.com" <mallory@evil.example>',
      'support@contoso.com <mallory@evil.example>',
      // desk may not send as the team address the profile itself allows.
      ...(v.who === 'desk' ? [TEAM_ADDRESS, { address: TEAM_ADDRESS }] : []),
    )
    .map((from): Mutation => ({ target: 'from', mutation: `from ${JSON.stringify(from)}`, body: withField(v.body, 'from', from) })),
);

const callerCredentials = mutate('caller credentials', (v) =>
  fc.oneof(
    fc.constant<Mutation>({ mutation: 'no credentials', credential: { kind: 'none' } }),
    fc.constantFrom(...WRONG_KEYS).map((key): Mutation => ({ mutation: `X-Api-Key: ${key}`, credential: { kind: 'key', key } })),
    fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.~+/='), minLength: 1, maxLength: 64 }).map((literal): Mutation => ({ mutation: 'X-Api-Key: a random key', credential: { kind: 'key', key: { literal } } })),
    fc.tuple(fc.constantFrom(...WRONG_TOKENS), fc.constantFrom<Who | undefined>(undefined, 'desk', 'ops')).map(([token, alsoKeyOf]): Mutation => ({ mutation: `Bearer ${token}${alsoKeyOf ? ` and ${alsoKeyOf}'s key` : ''}`, credential: { kind: 'bearer', token, ...(alsoKeyOf && { alsoKeyOf }) } })),
    fc.constantFrom('Basic ZGVzazprZXk=', 'Bearer', 'Bearer a b', 'bearer', 'Negotiate abc', 'Bearer ' + 'x'.repeat(10_000)).map((value): Mutation => ({ mutation: `Authorization: ${value.slice(0, 20)}`, credential: { kind: 'authorization', value } })),
  ),
);

const requestShape = mutate('request shape', (v) => {
  const text = JSON.stringify(v.body);
  return fc.oneof(
    fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'json', 'text/json', 'application/xml', '*/*').map((contentType): Mutation => ({ target: 'content-type', mutation: `Content-Type: ${contentType}`, contentType })),
    fc.integer({ min: 0, max: text.length - 1 }).map((n): Mutation => ({ target: 'body', mutation: `the JSON cut after ${n} characters`, body: { text: text.slice(0, n) } })),
    fc.constantFrom('[]', '"hello"', '42', 'null', 'true', `[${text}]`, `${text}${text}`, '{"to": "a@b.c",}', "{'to': 'a@b.c'}", 'to=a%40b.c&text=hi').map((raw): Mutation => ({ target: 'body', mutation: `body ${raw.slice(0, 24)}`, body: { text: raw } })),
    fc.constantFrom('later', 'SYNC', 'queued ', '', 'async', 'sync,queued').map((mode): Mutation => ({ target: 'mode', mutation: `?mode=${mode}`, query: `?mode=${queryValue(mode)}` })),
    fc.oneof(fc.constant(''), fc.constant('""'), fc.constant(' "" '), long(256, 1_000).map((s) => s.replace(/[^\x21-\x7e]/g, 'k'))).map((key): Mutation => ({ target: 'idempotency-key', mutation: `Idempotency-Key of ${key.length} characters`, headers: { ...v.headers, 'idempotency-key': key } })),
    fc.constantFrom('priority', 'Subject', 'to ', 'attachment', '__proto__', 'constructor', '', ' ', 'x'.repeat(300)).map((field): Mutation => ({ target: field === '' ? '""' : field, mutation: `unknown field ${JSON.stringify(field.slice(0, 20))}`, body: withRawField(v.body, field, '"high"') })),
    fc.constantFrom(...ADDRESS_FIELDS).map((field): Mutation => ({ target: field, mutation: `an unknown field in ${field}`, body: withField(v.body, field, { address: 'grace@example.org', nickname: 'G' }) })),
  );
});

const ARBITRARIES: Record<Category, fc.Arbitrary<SendCase>> = {
  'wrong type': wrongType,
  'missing field': missingField,
  'huge value': hugeValue,
  'deep nesting': deepNesting,
  'control character': controlCharacter,
  unicode,
  'invalid base64': invalidBase64,
  'unknown profile': unknownProfile,
  'from not allowed': fromNotAllowed,
  'caller credentials': callerCredentials,
  'request shape': requestShape,
};

/** One invalid request, of any category, each as likely as the others. */
export const invalidCase: fc.Arbitrary<SendCase> = fc.oneof(...CATEGORIES.map((c) => ARBITRARIES[c]));
