import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HttpRequest, InvocationContext, type HttpResponseInit } from '@azure/functions';
import Ajv2020, { type ValidateFunction } from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';
import { APP_ROOT } from '../../shared/config/profiles.js';
import { createLogger } from '../../shared/log.js';
import { MailRuntime, setRuntime } from '../../shared/runtime.js';
import { AzuritePeer } from '../peers/azurite.js';
import { EMAILS, VALID_ADDRESS_STRINGS, lineBreak, notAString } from '../support/sendBodies.js';
import { functionEntryFiles, installFunctionsCore, registeredFunctions, triggerOf } from '../peers/functionsCore.js';

type Json = Record<string, unknown>;
type Handler = (request: HttpRequest, context: InvocationContext) => Promise<HttpResponseInit>;

const BASE = 'https://m365-mail.invalid/openapi.json';
const silentLogger = createLogger({ log: () => {}, warn: () => {}, error: () => {} });

/** Every compiled function file loaded as the host loads them, the registrations recorded, the handlers by name. */
installFunctionsCore();
const handlers = new Map<string, Handler>();
for (const file of functionEntryFiles(APP_ROOT)) {
  for (const [name, value] of Object.entries(require(file) as Record<string, unknown>)) if (typeof value === 'function') handlers.set(name, value as Handler);
}
/** Whether loading the functions built the document (it must wait for the first request). */
const builtAtLoad = Object.keys(require.cache).some((file) => file.endsWith(path.join('shared', 'openapi', 'document.js')));

function handler(name: string): Handler {
  const found = handlers.get(name);
  assert.ok(found, `no exported handler ${name}`);
  return found;
}

function context(functionName: string): InvocationContext {
  return new InvocationContext({ invocationId: `test-${Math.random().toString(36).slice(2)}`, functionName, logHandler: () => {} });
}

function request(method: string, route: string, options: { params?: Record<string, string>; body?: string; headers?: Record<string, string>; query?: string } = {}): HttpRequest {
  return new HttpRequest({
    method,
    url: `http://localhost/api/${route}${options.query ?? ''}`,
    ...(options.params && { params: options.params }),
    ...(options.body !== undefined && { body: { string: options.body } }),
    headers: { ...(options.body !== undefined && { 'content-type': 'application/json' }), ...options.headers },
  });
}

function headersOf(response: HttpResponseInit): Record<string, string> {
  return Object.fromEntries(Object.entries((response.headers ?? {}) as Record<string, string>).map(([k, v]) => [k.toLowerCase(), v]));
}

async function servedDocument(): Promise<Json> {
  const response = await handler('openapi')(request('GET', 'openapi.json'), context('openapi'));
  assert.equal(response.status, 200);
  assert.equal(headersOf(response)['content-type'], 'application/json');
  return JSON.parse(response.body as string) as Json;
}

/** ajv (draft 2020-12, formats asserted) holding the document, so that schemas are compiled where they stand in it and its $refs resolve. */
function schemaValidator(document: Json): (pointer: string) => ValidateFunction {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  for (const keyword of Object.keys(document).filter((k) => k !== '$id')) ajv.addKeyword({ keyword });
  ajv.addSchema({ ...document, $id: BASE });
  const compiled = new Map<string, ValidateFunction>();
  return (pointer) => {
    let validate = compiled.get(pointer);
    if (!validate) {
      validate = ajv.compile({ $ref: `${BASE}#${pointer}` });
      compiled.set(pointer, validate);
    }
    return validate;
  };
}

const escapePointer = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1');

interface Documented {
  operation: Json;
  pointer: string;
}

function operationOf(document: Json, method: string, route: string): Documented {
  const paths = document.paths as Record<string, Record<string, Json>>;
  const operation = paths[`/api/${route}`]?.[method];
  assert.ok(operation, `${method.toUpperCase()} /api/${route} is not in the document`);
  return { operation, pointer: `/paths/${escapePointer(`/api/${route}`)}/${method}` };
}

/**
 * An answer a handler gave is documented: its status is listed (not only `default`), its media
 * type is the documented one and its body validates against that schema, and every header the
 * API defines that it carries (Location, Retry-After, Idempotent-Replayed, WWW-Authenticate) is
 * documented for that status.
 */
function assertDocumentedAnswer(document: Json, validator: (pointer: string) => ValidateFunction, method: string, route: string, response: HttpResponseInit): void {
  const { operation, pointer } = operationOf(document, method, route);
  const status = String(response.status ?? 200);
  const documented = (operation.responses as Record<string, Json>)[status];
  assert.ok(documented, `${method.toUpperCase()} /api/${route} answered ${status}, which the document does not list (it lists ${Object.keys(operation.responses as Json).join(', ')})`);
  const headers = headersOf(response);
  const names = Object.keys((documented.headers ?? {}) as Json).map((h) => h.toLowerCase());
  for (const name of ['location', 'retry-after', 'idempotent-replayed', 'www-authenticate']) {
    if (headers[name] !== undefined) assert.ok(names.includes(name), `${status} carries ${name}, undocumented`);
  }
  const content = documented.content as Record<string, unknown> | undefined;
  if (content === undefined) {
    assert.equal(response.body ?? '', '', `${status} has a body the document does not describe`);
    return;
  }
  const mediaType = (headers['content-type'] ?? '').split(';')[0]!.trim();
  assert.ok(mediaType in content, `${status} answered ${mediaType}, the document says ${Object.keys(content).join(', ')}`);
  const body = mediaType.endsWith('json') ? (JSON.parse(response.body as string) as unknown) : response.body;
  const validate = validator(`${pointer}/responses/${status}/content/${escapePointer(mediaType)}/schema`);
  assert.ok(validate(body), `${method.toUpperCase()} /api/${route} ${status}: ${JSON.stringify(validate.errors)} in ${JSON.stringify(body).slice(0, 500)}`);
}

describe('GET /api/openapi.json describes the HTTP API', () => {
  let document: Json;

  before(async () => {
    document = await servedDocument();
  });

  it('is not built when the function files load, only on the first request, and then once', async () => {
    assert.equal(builtAtLoad, false, 'loading the function files built the OpenAPI document');
    const first = await handler('openapi')(request('GET', 'openapi.json'), context('openapi'));
    const second = await handler('openapi')(request('GET', 'openapi.json'), context('openapi'));
    assert.equal(first.body, second.body);
  });

  it('is a valid OpenAPI 3.1 document (the official schema, through @seriousme/openapi-schema-validator)', async () => {
    assert.match(String(document.openapi), /^3\.1\.\d+$/);
    const { Validator } = await import('@seriousme/openapi-schema-validator');
    const validator = new Validator();
    const result = await validator.validate(document);
    assert.deepEqual(result, { valid: true });
    assert.equal(validator.version, '3.1');
  });

  it('lists every HTTP function the app registers, with its method and route, and nothing else', () => {
    const prefix = (JSON.parse(readFileSync(path.join(APP_ROOT, 'host.json'), 'utf8')) as { extensions: { http: { routePrefix: string } } }).extensions.http.routePrefix;
    const registered = registeredFunctions()
      .map((fn) => ({ name: fn.name, trigger: triggerOf(fn) }))
      .filter(({ trigger }) => trigger.type === 'httpTrigger')
      .flatMap(({ name, trigger }) => (trigger.methods as string[]).map((m) => `${m.toLowerCase()} /${prefix}/${String(trigger.route)} ${name}`))
      .sort();
    const documented = Object.entries(document.paths as Record<string, Record<string, Json>>)
      .flatMap(([p, item]) => Object.entries(item).map(([method, op]) => `${method} ${p} ${String(op.operationId)}`))
      .sort();
    assert.ok(registered.length >= 10, `only ${registered.length} HTTP registrations recorded`);
    assert.deepEqual(documented, registered);
  });

  it("asks for no key where the host asks for none, and for a function key wherever the authLevel is function", () => {
    for (const fn of registeredFunctions()) {
      const trigger = triggerOf(fn);
      if (trigger.type !== 'httpTrigger') continue;
      const { operation } = operationOf(document, (trigger.methods as string[])[0]!.toLowerCase(), String(trigger.route));
      const security = operation.security as Array<Record<string, string[]>>;
      if (trigger.authLevel === 'anonymous') assert.deepEqual(security, [], `${fn.name} is anonymous`);
      else {
        assert.ok(security.length > 0, `${fn.name} documents no security`);
        for (const requirement of security) assert.ok('functionKey' in requirement || 'functionKeyQuery' in requirement, `${fn.name}: ${JSON.stringify(requirement)} has no function key`);
      }
    }
    const schemes = (document.components as Json).securitySchemes as Record<string, Json>;
    assert.deepEqual(schemes.functionKey, { ...schemes.functionKey, type: 'apiKey', in: 'header', name: 'x-functions-key' });
    assert.deepEqual(schemes.functionKeyQuery, { ...schemes.functionKeyQuery, type: 'apiKey', in: 'query', name: 'code' });
    assert.deepEqual(schemes.callerKey, { ...schemes.callerKey, type: 'apiKey', in: 'header', name: 'X-Api-Key' });
    assert.deepEqual(schemes.entraBearer, { ...schemes.entraBearer, type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  });

  it('names every path parameter of a route, and the problem answers of each operation carry the problem schema', () => {
    for (const [p, item] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
      for (const op of Object.values(item)) {
        const inPath = ((op.parameters ?? []) as Json[]).filter((q) => q.in === 'path').map((q) => q.name);
        assert.deepEqual(inPath, [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]), p);
        const responses = op.responses as Record<string, Json>;
        assert.ok(responses.default, `${p} has no default answer`);
        for (const [status, answer] of Object.entries(responses)) {
          if (status !== 'default' && Number(status) < 400) continue;
          const content = answer.content as Record<string, Json>;
          if (op.operationId === 'oauthCallback') assert.deepEqual(Object.keys(content), ['text/plain']);
          else assert.match(JSON.stringify(content['application/problem+json']?.schema), /#\/components\/schemas\/Problem/, `${p} ${status}`);
        }
      }
    }
  });

  it('reveals nothing configured: no profile name, mailbox or host of the running app', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'm365-openapi-'));
    try {
      const profiles = { profiles: { 'zebra-desk': { mailbox: 'okapi@fabrikam.example', tenantId: 'tenant-quokka', clientId: 'client-wombat', auth: { type: 'clientSecret', secret: 'numbat-secret' }, send: { via: 'smtp', allowedFrom: ['okapi@fabrikam.example'] } } } };
      setRuntime(new MailRuntime({ env: { MAIL_PROFILES: JSON.stringify(profiles), NUMBAT_SECRET: 'x', MAIL_DIR: dir }, logger: silentLogger }));
      const text = JSON.stringify(await servedDocument());
      for (const configured of ['zebra-desk', 'okapi', 'fabrikam', 'quokka', 'wombat', 'numbat', dir]) assert.ok(!text.includes(configured), `the document mentions ${configured}`);
    } finally {
      setRuntime(undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/*
 * Generated request bodies. Each field draws from values the schema accepts and values it
 * refuses (wrong types, line breaks and control characters, lengths at the limits counted in
 * code points, reserved and non-X- header names, file names that are paths, bad base64, unknown
 * fields). Where a rule cannot be a JSON Schema keyword the generator stays on the side both
 * agree on, and says so: an address *string* ("Name <a@b.c>") is parsed by nodemailer's
 * addressparser, which no pattern reproduces, so address strings are drawn from valid ones
 * (with or without a line break, which the schema does refuse); an address object's name is
 * not made an RFC 2047 encoded-word hiding an address; and base64 made only of base64
 * characters always has a length that is a multiple of 4 (the document states that rule in
 * words: a pattern for it overflows V8's stack on large attachments). Profile names are the
 * configured one or not strings: an unknown name is EPROFILE_UNKNOWN before validation, and the
 * document cannot know the names.
 */
const anyText = (maxLength: number) => fc.string({ unit: 'binary', maxLength });
/** Strings just under and over `limit` characters, some of them made of characters outside the BMP (one code point, two UTF-16 units). */
const nearLimit = (limit: number) => fc.string({ unit: fc.constantFrom('a', 'é', '😀'), minLength: limit - 2, maxLength: limit + 2 });
/** Mostly what the schema takes, sometimes anything: with a dozen fields, a body is then valid often enough for both verdicts to be common. */
const mostly = <T, U>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<U>) => fc.oneof({ weight: 12, arbitrary: usual }, { weight: 1, arbitrary: unusual });
/** A record of optional fields, and now and then a field the schema does not know. */
const withUnknownField = <T extends object>(record: fc.Arbitrary<T>, unknown: Record<string, unknown>) =>
  fc.tuple(record, fc.oneof({ weight: 14, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.constant(unknown) })).map(([known, extra]) => ({ ...known, ...extra }));

const addressObject = withUnknownField(
  fc.record(
    {
      name: mostly(fc.constantFrom('Grace Hopper', 'Desk', ''), fc.oneof(anyText(12), fc.constantFrom('CEO <ceo@example.com>', 'a@b'), notAString)),
      address: mostly(fc.constantFrom(...EMAILS), fc.oneof(fc.emailAddress(), anyText(12), notAString)),
    },
    { requiredKeys: ['address'] },
  ),
  { nickname: 'extra' },
);
const address = mostly(
  fc.oneof(fc.constantFrom(...VALID_ADDRESS_STRINGS), addressObject),
  fc.oneof(fc.tuple(fc.constantFrom(...VALID_ADDRESS_STRINGS), lineBreak).map(([a, br]) => `${a.slice(0, 3)}${br}${a.slice(3)}`), notAString),
);
const addressList = mostly(fc.oneof(address, fc.array(address, { maxLength: 3 })), fc.array(fc.array(address, { maxLength: 1 }), { minLength: 1, maxLength: 1 }));

const BASE64_ALPHABET = /^[A-Za-z0-9+/\s]*(?:=\s*){0,2}$/;
const base64 = mostly(
  fc.oneof(
    fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString('base64')),
    fc.tuple(fc.uint8Array({ minLength: 3, maxLength: 12 }), fc.nat(), fc.constantFrom(' ', '\n', '\r\n', '\t')).map(([bytes, at, ws]) => {
      const text = Buffer.from(bytes).toString('base64');
      const i = at % text.length;
      return `${text.slice(0, i)}${ws}${text.slice(i)}`;
    }),
  ),
  fc.oneof(fc.string({ unit: fc.constantFrom('A', 'z', '9', '+', '/', '=', ' ', '*', '-', '_', 'é'), maxLength: 9 }).filter((s) => !BASE64_ALPHABET.test(s) || s.replace(/\s+/g, '').length % 4 === 0), notAString),
);

const headerName = mostly(
  fc.oneof(fc.constantFrom('X-Ticket', 'x-lower', 'X-MS-Other', 'X-Microsoft-Other'), fc.stringMatching(/^[Xx]-[A-Za-z0-9-]{1,8}$/)),
  fc.oneof(fc.constantFrom('X-', 'X-a_b', 'Reply-To', 'X-MS-Exchange-Organization-SCL', 'x-ms-exchange-foo', 'X-Forefront-Antispam-Report', 'x-microsoft-antispamX'), anyText(8)),
);
const headerValue = mostly(fc.oneof(fc.constantFrom('42', 'a\tb', 'é😀'), nearLimit(998)), fc.oneof(anyText(10), notAString));

const attachment = withUnknownField(
  fc.record(
    {
      filename: mostly(fc.oneof(fc.constantFrom('report.pdf', '...', '.hidden', 'é😀.txt'), nearLimit(255)), fc.oneof(fc.constantFrom('.', '..', 'a/b.txt', 'a\\b.txt', ''), anyText(10), notAString)),
      contentType: mostly(fc.constantFrom('application/pdf', 'text/plain', 'image/svg+xml'), fc.oneof(fc.constantFrom('text', 'a/b/c', 'text/plain; charset=utf-8'), anyText(8), notAString)),
      content: base64,
      contentId: mostly(fc.constantFrom('logo', 'logo@example.com', 'x'.repeat(200)), fc.oneof(fc.constantFrom('<logo>', 'a b', '', 'x'.repeat(201)), anyText(6), notAString)),
    },
    { requiredKeys: ['filename', 'content'] },
  ),
  { size: 1 },
);

const sendBody = withUnknownField(
  fc.record(
    {
      profile: mostly(fc.constant('local'), fc.oneof(fc.constant(''), notAString)),
      from: address,
      to: addressList,
      cc: addressList,
      bcc: addressList,
      replyTo: addressList,
      subject: mostly(fc.oneof(fc.constantFrom('Hello', 'Ticket 42', 'tab\there', 'é😀'), fc.string({ maxLength: 20 }), nearLimit(998)), fc.oneof(anyText(16), notAString)),
      text: mostly(fc.string({ maxLength: 20 }), fc.oneof(anyText(20), notAString)),
      html: mostly(fc.constant('<p>hi</p>'), notAString),
      importance: mostly(fc.constantFrom('low', 'normal', 'high'), fc.oneof(fc.constantFrom('urgent', 'HIGH', ''), notAString)),
      headers: mostly(fc.dictionary(headerName, headerValue, { maxKeys: 3 }), fc.constantFrom([], 'X-A: 1', null)),
      attachments: mostly(fc.array(attachment, { maxLength: 2 }), fc.oneof(attachment, fc.constant('none'))),
    },
    { requiredKeys: [] },
  ),
  { attachment: [] },
);

const diagnoseBody = withUnknownField(
  fc.record(
    { sendTo: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...EMAILS) }, { weight: 1, arbitrary: fc.oneof(fc.emailAddress(), anyText(12), fc.tuple(fc.constantFrom(...EMAILS), lineBreak).map(([a, br]) => a + br), notAString) }) },
    { requiredKeys: [] },
  ),
  { send: true },
);

/** What a handler's verdict on a body is: refused as input (400 EINPUT naming a field) or not. */
interface Verdict {
  refused: boolean;
  status: number;
  problem?: Json;
}

async function verdictOf(response: HttpResponseInit): Promise<Verdict> {
  const status = response.status ?? 200;
  const body = typeof response.body === 'string' && response.body !== '' ? (JSON.parse(response.body) as Json) : {};
  const problem = status >= 400 ? body : undefined;
  return { refused: status === 400 && problem?.code === 'EINPUT', status, ...(problem && { problem }) };
}

/**
 * For each generated body, the document's verdict equals the handler's. The document's verdict
 * is ajv (draft 2020-12, formats asserted) on the request body schema of the operation as it
 * stands in the served document. The handler's verdict is "refused as input": a 400
 * application/problem+json with code EINPUT and a `field`. Every other answer is "accepted as
 * input", whatever it is: 200, or a semantic refusal the document cannot decide because it
 * depends on the configuration or the whole message (ENO_RECIPIENTS, ENOTHING_TO_SEND,
 * EFROM_NOT_ALLOWED, ETOO_MANY_*). So: schema-invalid ⇒ 400 EINPUT naming a field, and nothing
 * reached the transport (no file in the local outbox); schema-valid ⇒ never EINPUT. No generated
 * body may get a 5xx: bad input is never a 500.
 */
describe('the document and the handlers agree on which request bodies are valid input', () => {
  let document: Json;
  let validator: (pointer: string) => ValidateFunction;
  let dir: string;
  const outbox = () => {
    const folder = path.join(dir, 'outbox');
    return existsSync(folder) ? readdirSync(folder).length : 0;
  };

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-openapi-verdict-'));
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir }, logger: silentLogger }));
    document = await servedDocument();
    validator = schemaValidator(document);
  });
  after(() => {
    setRuntime(undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const agree = (schemaValid: boolean, verdict: Verdict, sentBefore: number, sentAfter: number) => {
    assert.ok(verdict.status < 500, `a 5xx for a generated body: ${JSON.stringify(verdict.problem)}`);
    if (schemaValid) {
      assert.equal(verdict.refused, false, `the schema accepts it, the handler refused it: ${JSON.stringify(verdict.problem)}`);
    } else {
      assert.equal(verdict.refused, true, `the schema refuses it, the handler answered ${verdict.status} ${JSON.stringify(verdict.problem ?? {})}`);
      assert.equal(typeof verdict.problem?.field, 'string', 'the refusal names no field');
      assert.equal(sentAfter, sentBefore, 'a refused body reached the transport');
    }
  };

  /** Runs the property over `bodies` against one operation's request body schema; answers how many bodies the schema refused. */
  const agreeOn = async (route: string, bodies: fc.Arbitrary<Json>, answer: (body: Json) => Promise<HttpResponseInit>, numRuns: number): Promise<number> => {
    const validate = validator(`${operationOf(document, 'post', route).pointer}/requestBody/content/application~1json/schema`);
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const schemaValid = validate(body);
        if (!schemaValid) refused++;
        const before = outbox();
        agree(schemaValid, await verdictOf(await answer(body)), before, outbox());
      }),
      { numRuns },
    );
    return refused;
  };

  it('POST /api/send: the SendRequest schema refuses a body exactly when the handler answers 400 EINPUT', async () => {
    const refused = await agreeOn('send', sendBody, (body) => handler('send')(request('POST', 'send', { body: JSON.stringify(body) }), context('send')), 400);
    // Both sides of the verdict were exercised, not only one.
    assert.ok(refused > 20 && refused < 390, `${refused} of 400 bodies refused`);
  });

  it('POST /api/profiles/{name}/test: the DiagnoseRequest schema refuses a body exactly when the handler answers 400 EINPUT', async () => {
    const diagnose = (body: Json) => handler('testProfile')(request('POST', 'profiles/local/test', { params: { name: 'local' }, body: JSON.stringify(body) }), context('testProfile'));
    const refused = await agreeOn('profiles/{name}/test', diagnoseBody, diagnose, 100);
    assert.ok(refused >= 5 && refused <= 95, `${refused} of 100 bodies refused`);
  });
});

describe("the handlers' real answers are the ones the document describes", () => {
  const azurite = new AzuritePeer();
  let document: Json;
  let validator: (pointer: string) => ValidateFunction;
  let dir: string;
  const check = (method: string, route: string, response: HttpResponseInit) => assertDocumentedAnswer(document, validator, method, route, response);

  before(async () => {
    await azurite.start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'm365-openapi-answers-'));
    setRuntime(new MailRuntime({ env: { MAIL_DIR: dir, AzureWebJobsStorage: azurite.connectionString }, logger: silentLogger }));
    document = await servedDocument();
    validator = schemaValidator(document);
  });
  after(async () => {
    setRuntime(undefined);
    rmSync(dir, { recursive: true, force: true });
    await azurite.stop();
  });

  const message = { to: 'ada@example.com', subject: 'Hi', text: 'Hello', attachments: [{ filename: 'a.txt', content: 'QUJD' }] };

  it('POST /api/send: 200 sent, 202 queued with Location, the replay with Idempotent-Replayed, 400, 422 and 403 problems', async () => {
    const send = handler('send');
    check('post', 'send', await send(request('POST', 'send', { body: JSON.stringify(message) }), context('send')));
    const queued = await send(request('POST', 'send', { body: JSON.stringify(message), query: '?mode=queued', headers: { 'idempotency-key': 'openapi-1' } }), context('send'));
    assert.equal(queued.status, 202);
    check('post', 'send', queued);
    const replay = await send(request('POST', 'send', { body: JSON.stringify(message), query: '?mode=queued', headers: { 'idempotency-key': 'openapi-1' } }), context('send'));
    assert.equal(headersOf(replay)['idempotent-replayed'], 'true');
    check('post', 'send', replay);
    check('post', 'send', await send(request('POST', 'send', { body: JSON.stringify({ ...message, subject: 'a\nb' }) }), context('send')));
    check('post', 'send', await send(request('POST', 'send', { body: JSON.stringify({ subject: 'x', text: 'y' }) }), context('send')));
    check('post', 'send', await send(request('POST', 'send', { body: JSON.stringify({ ...message, from: 'ceo@example.com' }) }), context('send')));
    check('post', 'send', await send(request('POST', 'send', { body: JSON.stringify(message), query: '?mode=later' }), context('send')));

    const id = (JSON.parse(queued.body as string) as { id: string }).id;
    const status = handler('sendStatus');
    const found = await status(request('GET', `send/${id}`, { params: { id } }), context('sendStatus'));
    assert.equal(found.status, 200);
    check('get', 'send/{id}', found);
    check('get', 'send/{id}', await status(request('GET', 'send/nope', { params: { id: 'nope' } }), context('sendStatus')));
  });

  it('GET /api/profiles, /api/health and /api/health/profiles: 200 reports', async () => {
    for (const [name, route] of [['profiles', 'profiles'], ['health', 'health'], ['healthProfiles', 'health/profiles']] as const) {
      const response = await handler(name)(request('GET', route), context(name));
      assert.equal(response.status, 200, String(response.body));
      check('get', route, response);
    }
  });

  it('POST /api/profiles/{name}/test and /poll: 200 reports, 404 for an unknown profile, 400 for a body that is not JSON', async () => {
    const test = handler('testProfile');
    const report = await test(request('POST', 'profiles/local/test', { params: { name: 'local' } }), context('testProfile'));
    assert.equal(report.status, 200);
    check('post', 'profiles/{name}/test', report);
    check('post', 'profiles/{name}/test', await test(request('POST', 'profiles/nope/test', { params: { name: 'nope' } }), context('testProfile')));
    check('post', 'profiles/{name}/test', await test(request('POST', 'profiles/local/test', { params: { name: 'local' }, body: '{' }), context('testProfile')));
    const poll = handler('pollNow');
    const polled = await poll(request('POST', 'profiles/local/poll', { params: { name: 'local' } }), context('pollNow'));
    assert.equal(polled.status, 200, String(polled.body));
    check('post', 'profiles/{name}/poll', polled);
    check('post', 'profiles/{name}/poll', await poll(request('POST', 'profiles/nope/poll', { params: { name: 'nope' } }), context('pollNow')));
  });

  it('GET /api/connect/{profile} and /api/oauth/callback: their refusals (a profile that is not delegated, a callback without its consent cookie)', async () => {
    const connect = await handler('connect')(request('GET', 'connect/local', { params: { profile: 'local' } }), context('connect'));
    assert.ok((connect.status ?? 200) >= 400);
    check('get', 'connect/{profile}', connect);
    const callback = await handler('oauthCallback')(request('GET', 'oauth/callback', { query: '?code=x&state=y' }), context('oauthCallback'));
    assert.ok((callback.status ?? 200) >= 400);
    check('get', 'oauth/callback', callback);
  });

  it('GET /api/openapi.json: the document itself', async () => {
    check('get', 'openapi.json', await handler('openapi')(request('GET', 'openapi.json'), context('openapi')));
  });
});
