import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CALLER_KEY_HEADER } from '../callers/authorize.js';
import { APP_ROOT } from '../config/profiles.js';
import { diagnoseRequestSchema } from '../diagnose/diagnoseProfile.js';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { healthReportSchema } from '../health/reportSchemas.js';
import { problemSchema } from '../http/problemSchema.js';
import { sendRequestSchema } from '../mail/outgoing.js';
import { notificationCollectionSchema } from '../receive/notifications.js';
import { LIFECYCLE_ROUTE, NOTIFICATION_ROUTE } from '../receive/notificationRoutes.js';
import { profilesDescriptionSchema } from '../profiles/descriptionSchema.js';
import { queuedAnswerSchema, sendStatusViewSchema, sentAnswerSchema } from '../send/answerSchemas.js';
import { SEND_MODES } from '../send/acceptSend.js';
import { redeliverRequestSchema } from '../receive/redeliver.js';
import { diagnosisReportSchema, pollFailureSchema, pollResultSchema, profilesHealthReportSchema, redeliverResultSchema } from './responses.js';

/**
 * The OpenAPI 3.1 description of the HTTP API, generated from the zod schemas the handlers
 * validate requests with and the schemas of their answers, so that neither can drift from it.
 * It describes the API's shape only: nothing configured (no profile, mailbox, caller or host)
 * goes into it, so it is the same document for every deployment.
 */

type Json = Record<string, unknown>;

/** The route prefix of host.json (extensions.http.routePrefix). */
const ROUTE_PREFIX = 'api';

/** Request bodies, by what the handler parses them with: read as the handler reads them (io: input). */
const REQUESTS = { SendRequest: sendRequestSchema, DiagnoseRequest: diagnoseRequestSchema, Notifications: notificationCollectionSchema, RedeliverRequest: redeliverRequestSchema } satisfies Record<string, z.ZodType>;

/** Answers, by what builds them: as they are sent (io: output). */
const ANSWERS = {
  Problem: problemSchema,
  SentAnswer: sentAnswerSchema,
  QueuedAnswer: queuedAnswerSchema,
  SendStatus: sendStatusViewSchema,
  Profiles: profilesDescriptionSchema,
  Health: healthReportSchema,
  ProfilesHealth: profilesHealthReportSchema,
  Diagnosis: diagnosisReportSchema,
  PollResult: pollResultSchema,
  PollFailure: pollFailureSchema,
  Redelivered: redeliverResultSchema,
} satisfies Record<string, z.ZodType>;

type SchemaName = keyof typeof REQUESTS | keyof typeof ANSWERS;

const ref = (name: SchemaName): Json => ({ $ref: `#/components/schemas/${name}` });

/**
 * A request body is read as the handler reads it (io: input: defaults make a field optional,
 * transforms are described by what they take); an answer as it is sent (io: output). Unknown
 * fields are refused by the request schemas (strict) and absent from answers, so both say
 * additionalProperties: false.
 */
function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const { $schema: _dialect, ...json } = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'throw' }) as Json;
  return json;
}

/** Who may call an operation, as the handler enforces it. */
type Access = 'anonymous' | 'caller' | 'admin';

interface Operation {
  /** The registered function: its name is the operationId. */
  function: string;
  method: 'get' | 'post';
  /** The route as registered, without the prefix. */
  route: string;
  summary: string;
  description?: string;
  access: Access;
  parameters?: Json[];
  requestBody?: { schema: SchemaName; required: boolean; description?: string };
  /** The answers that are not problems, by status. */
  answers: Record<string, Json>;
  /** The problems it answers beyond those of its access level: a code, or a code and the status this operation answers it with. */
  problems: Array<ErrorCode | [ErrorCode, number]>;
  /** The problem answers are text pages for a person (oauthCallback), not problem+json. */
  problemsAsText?: true;
}

const json = (schema: SchemaName, description: string, headers?: Json): Json => ({
  description,
  ...(headers && { headers }),
  content: { 'application/json': { schema: ref(schema) } },
});

const header = (description: string, schema: Json = { type: 'string' }): Json => ({ description, schema });

const REPLAYED = { 'Idempotent-Replayed': header('true when this answers again a request made earlier with the same Idempotency-Key.', { type: 'string', enum: ['true'] }) };

/** Problems any key-protected operation may answer: the caller checks, an invalid profiles document, a bug. */
const CALLER_PROBLEMS: ErrorCode[] = ['EUNAUTHENTICATED', 'EFORBIDDEN', 'ECONFIG', 'EINTERNAL'];

/** What the mail provider, the token and the secret store may answer on the way to sending. */
const PROVIDER_PROBLEMS: ErrorCode[] = ['ESECRET_NOT_FOUND', 'ESECRET_ACCESS', 'ECERTIFICATE', 'ETOKEN', 'EAUTH', 'ESEND_DENIED', 'EMAILBOX', 'ETHROTTLED', 'EUNAVAILABLE', 'EREJECTED', 'ECONNECTION', 'ETLS', 'EPROXY', 'EPROVIDER'];

const OPERATIONS: Operation[] = [
  {
    function: 'send',
    method: 'post',
    route: 'send',
    summary: 'Send a message',
    description: 'Validates the message completely (bad input is a 4xx problem and reaches no transport), checks `from` against the profile, then sends it now (200) or stores and queues it (202).',
    access: 'caller',
    parameters: [
      { name: 'mode', in: 'query', required: false, description: 'queued: store and queue (202); sync: send now (200). Default: Prefer, then the SEND_MODE app setting (sync).', schema: jsonSchemaOf(z.enum(SEND_MODES), 'input') },
      { name: 'Prefer', in: 'header', required: false, description: 'respond-async (RFC 7240) queues the message when mode is not given.', schema: { type: 'string' } },
      {
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description: 'Makes a repeat safe for 24 hours, per profile: 1 to 255 printable ASCII characters, optionally in double quotes (draft-ietf-httpapi-idempotency-key-header).',
        schema: { type: 'string', minLength: 1, maxLength: 257 },
      },
    ],
    requestBody: { schema: 'SendRequest', required: true, description: 'Content-Type application/json (or none). At least one recipient and one of text, html or an attachment.' },
    answers: {
      '200': json('SentAnswer', 'Sent: the provider accepted the message (or the replay of a sent one).', REPLAYED),
      '202': json('QueuedAnswer', 'Queued: stored and on the queue (or the replay of a queued request).', { Location: header('/api/send/{id}: where its status is read.', { type: 'string', format: 'uri-reference' }), ...REPLAYED }),
    },
    problems: ['EINPUT', 'EPROFILE_UNKNOWN', 'ENO_RECIPIENTS', 'ENOTHING_TO_SEND', 'EFROM_NOT_ALLOWED', 'ETOO_LARGE', 'ETOO_MANY_RECIPIENTS', 'ETOO_MANY_ATTACHMENTS', 'ETOO_MANY_HEADERS', 'EIDEMPOTENCY_MISMATCH', 'EIDEMPOTENCY_IN_PROGRESS', 'ESTATE', 'EBACKLOG', ...PROVIDER_PROBLEMS],
  },
  {
    function: 'sendStatus',
    method: 'get',
    route: 'send/{id}',
    summary: 'The status of a queued send (or of a sync send made with an Idempotency-Key)',
    access: 'caller',
    answers: { '200': json('SendStatus', 'The send as recorded.') },
    problems: ['ESEND_NOT_FOUND', 'ESTATE'],
  },
  {
    function: 'profiles',
    method: 'get',
    route: 'profiles',
    summary: 'The configured profiles: capabilities, never secrets nor their names',
    access: 'admin',
    answers: { '200': json('Profiles', 'The profiles.') },
    problems: [],
  },
  {
    function: 'testProfile',
    method: 'post',
    route: 'profiles/{name}/test',
    summary: 'Diagnose a profile step by step',
    description: 'Answers 200 whether the profile passed or not: `ok` and the last step say which. Bounded to 60 seconds.',
    access: 'admin',
    requestBody: { schema: 'DiagnoseRequest', required: false, description: 'Optional: sendTo also sends a short test message.' },
    answers: { '200': json('Diagnosis', 'The diagnosis.') },
    problems: ['EINPUT', 'ETOO_LARGE', ['EPROFILE_UNKNOWN', 404]],
  },
  {
    function: 'health',
    method: 'get',
    route: 'health',
    summary: 'Liveness: counts only',
    description: 'Anonymous, for App Service Health check and load balancer probes. 503 when the configuration is invalid or state storage does not answer; the problem then carries the code and title only.',
    access: 'anonymous',
    answers: { '200': json('Health', 'The app can work.') },
    problems: [['ECONFIG', 503], ['ESTATE', 503], 'EINTERNAL'],
  },
  {
    function: 'healthProfiles',
    method: 'get',
    route: 'health/profiles',
    summary: 'Per receiving profile: the last poll and its outcome; per credential: its expiry',
    description: 'Always 200 with `ok` when the report could be made.',
    access: 'admin',
    answers: { '200': json('ProfilesHealth', 'The report.') },
    problems: ['ESTATE'],
  },
  {
    function: 'pollNow',
    method: 'post',
    route: 'profiles/{name}/poll',
    summary: 'Poll one receiving profile now',
    description: 'A poll that failed answers the problem of its error, with the poll result as `poll`.',
    access: 'admin',
    answers: { '200': json('PollResult', 'The poll ran (completed, leased or aborted).') },
    problems: ['EINPUT', ['EPROFILE_UNKNOWN', 404], 'ESTATE', 'ESTATE_CONFLICT', 'ESINK_REJECTED', 'ESINK_UNAVAILABLE', ...PROVIDER_PROBLEMS],
  },
  {
    function: 'redeliver',
    method: 'post',
    route: 'profiles/{name}/redeliver',
    summary: 'Deliver again messages a receiving profile delivered before',
    description: 'From the copies kept for receive.retainDays (default 7), by id or by delivery time ([from, to)), at most 1,000 per request (`more` says when the range holds more), with the same stable ids and marked as a redelivery: the webhook gets `X-Mail-Redelivery: true`, a queue message `"redelivery": true`.',
    access: 'admin',
    requestBody: { schema: 'RedeliverRequest', required: true },
    answers: { '200': json('Redelivered', 'What was delivered again, and the ids no copy is kept of.') },
    problems: ['EINPUT', 'ETOO_LARGE', ['EPROFILE_UNKNOWN', 404], 'ESTATE', 'ESINK_REJECTED', 'ESINK_UNAVAILABLE', 'ESECRET_NOT_FOUND', 'ESECRET_ACCESS'],
  },
  {
    function: 'connect',
    method: 'get',
    route: 'connect/{profile}',
    summary: 'Start delegated consent for a delegated profile',
    access: 'admin',
    answers: {
      '302': {
        description: 'To the sign-in page.',
        headers: {
          Location: header('The authority\'s authorize URL.', { type: 'string', format: 'uri' }),
          'Set-Cookie': header('The consent cookie (HttpOnly, Secure) the callback checks.'),
        },
      },
    },
    problems: ['ECONSENT', ['EPROFILE_UNKNOWN', 404], 'ESECRET_NOT_FOUND', 'ESECRET_ACCESS'],
  },
  {
    function: 'oauthCallback',
    method: 'get',
    route: 'oauth/callback',
    summary: 'Where the sign-in returns: stores the refresh token',
    description: 'A page for a person, in text/plain, that never shows a token. The authority adds code and state, or error and error_description.',
    access: 'anonymous',
    parameters: ['code', 'state', 'error', 'error_description'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } })),
    answers: { '200': { description: '"Connected: ..." and where the refresh token is kept.', content: { 'text/plain': { schema: { type: 'string' } } } } },
    problems: ['ECONSENT', 'ETOKEN', 'ESECRET_ACCESS', 'ECONFIG', 'EINTERNAL'],
    problemsAsText: true,
  },
  ...(['notifications', 'lifecycleNotifications'] as const).map((fn): Operation => ({
    function: fn,
    method: 'post',
    route: fn === 'notifications' ? NOTIFICATION_ROUTE : LIFECYCLE_ROUTE,
    summary: fn === 'notifications' ? 'Where Graph posts change notifications of push profiles (receive.push)' : 'Where Graph posts lifecycle events of push profiles\' subscriptions',
    description: 'For Microsoft Graph, not for callers: anonymous, because each notification carries its subscription\'s clientState, checked in constant time; one that does not match is ignored and counted. With validationToken (Graph validating the URL) the token is answered as text/plain.',
    access: 'anonymous',
    parameters: [{ name: 'validationToken', in: 'query', required: false, description: 'Sent by Graph when it creates a subscription: answered as it came, as text/plain.', schema: { type: 'string', minLength: 1, maxLength: 4096 } }],
    requestBody: { schema: 'Notifications', required: false, description: 'A changeNotificationCollection (none with validationToken).' },
    answers: {
      '200': { description: 'The validation token, echoed.', content: { 'text/plain': { schema: { type: 'string' } } } },
      '202': { description: 'Accepted: the polls asked for are queued (a notification that was not ours is accepted and ignored alike).' },
    },
    problems: ['EINPUT', 'ETOO_LARGE', 'ESTATE', 'ECONFIG', 'EINTERNAL'],
  })),
  {
    function: 'openapi',
    method: 'get',
    route: 'openapi.json',
    summary: 'This document',
    access: 'anonymous',
    answers: { '200': { description: 'The OpenAPI 3.1 document of this API.', content: { 'application/json': { schema: { type: 'object' } } } } },
    problems: [],
  },
];

/** The path parameters a route names, in order: `profiles/{name}/test` has `name`. */
function pathParameters(route: string): Json[] {
  const about: Record<string, string> = { id: 'The id POST /api/send answered with.', name: 'A profile name.', profile: 'A delegated profile name.' };
  return [...route.matchAll(/\{(\w+)\}/g)].map(([, name]) => ({ name, in: 'path', required: true, ...(about[name!] && { description: about[name!] }), schema: { type: 'string' } }));
}

/** Function keys (Azure's authLevel function: header or query) and, when the profiles document names callers, a caller key or an Entra token. */
const SECURITY_SCHEMES: Json = {
  functionKey: { type: 'apiKey', in: 'header', name: 'x-functions-key', description: 'A function key or the host key. Checked by the Functions host in Azure; func start does not check it.' },
  functionKeyQuery: { type: 'apiKey', in: 'query', name: 'code', description: 'The function key as ?code=.' },
  callerKey: { type: 'apiKey', in: 'header', name: CALLER_KEY_HEADER, description: 'A caller key (callers.<name>.keySecret), when the profiles document names callers.' },
  entraBearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An Entra access token for this app\'s API (API_AUDIENCE, tenant API_TENANT_ID), v1.0 or v2.0, of an app named as a caller (callers.<name>.entraAppId).' },
};

/** Any requirement in the list suffices: a function key, alone (no callers configured) or with a caller's credential. */
function securityOf(access: Access): Json[] {
  if (access === 'anonymous') return [];
  return ['functionKey', 'functionKeyQuery'].flatMap((key) => [{ [key]: [] }, { [key]: [], callerKey: [] }, { [key]: [], entraBearer: [] }]);
}

function accessNote(access: Access): string {
  if (access === 'anonymous') return 'Anonymous: no key.';
  const who = access === 'admin' ? 'a caller with "admin": true' : 'any caller, for its own profiles and sends';
  return `A function key; when the profiles document names callers, also ${who} (X-Api-Key or an Entra bearer token).`;
}

/** The problem answers of an operation, one per status, each naming the codes it may carry. */
function problemResponses(operation: Operation): Json {
  const byStatus = new Map<number, ErrorCode[]>();
  const problems: Array<ErrorCode | [ErrorCode, number]> = [...(operation.access === 'anonymous' ? [] : CALLER_PROBLEMS), ...operation.problems];
  for (const entry of problems) {
    const [code, status] = typeof entry === 'string' ? [entry, ERROR_CODES[entry].status] : entry;
    const codes = byStatus.get(status) ?? [];
    if (!codes.includes(code)) codes.push(code);
    byStatus.set(status, codes);
  }
  const content = operation.problemsAsText
    ? { 'text/plain': { schema: { type: 'string' } } }
    : { 'application/problem+json': { schema: operation.function === 'pollNow' ? { anyOf: [ref('Problem'), ref('PollFailure')] } : ref('Problem') } };
  const responses: Json = {};
  for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = { description: codes.join(', '), headers: problemHeaders(status), content };
  }
  responses.default = { description: 'Any other problem (docs/errors.md).', content };
  return responses;
}

function problemHeaders(status: number): Json {
  if (status === 401) return { 'WWW-Authenticate': header('The schemes the app takes (Bearer, ApiKey).') };
  if (status === 409 || status === 429 || status === 503) return { 'Retry-After': header('Seconds to wait before trying again, when known.', { type: 'integer', minimum: 0 }) };
  return {};
}

function operationObject(operation: Operation): Json {
  return {
    operationId: operation.function,
    summary: operation.summary,
    description: [operation.description, accessNote(operation.access)].filter(Boolean).join('\n\n'),
    security: securityOf(operation.access),
    ...((operation.parameters || operation.route.includes('{')) && { parameters: [...pathParameters(operation.route), ...(operation.parameters ?? [])] }),
    ...(operation.requestBody && {
      requestBody: {
        required: operation.requestBody.required,
        ...(operation.requestBody.description && { description: operation.requestBody.description }),
        content: { 'application/json': { schema: ref(operation.requestBody.schema) } },
      },
    }),
    responses: { ...operation.answers, ...problemResponses(operation) },
  };
}

function packageVersion(): string {
  const { version } = JSON.parse(readFileSync(path.join(APP_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : '0.0.0';
}

/** Builds the document; functions/openapi.ts calls it once per process, on the first request. */
export function buildOpenApiDocument(): Json {
  const paths: Record<string, Json> = {};
  for (const operation of OPERATIONS) {
    const key = `/${ROUTE_PREFIX}/${operation.route}`;
    paths[key] = { ...paths[key], [operation.method]: operationObject(operation) };
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'm365-mail-functions',
      version: packageVersion(),
      description: 'Send and receive Microsoft 365 mail (Graph, SMTP/IMAP/POP3 with OAuth2). Generated from the schemas the handlers validate requests with and build answers from. Problems are application/problem+json (RFC 9457) with a stable code.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    paths,
    components: {
      schemas: {
        ...Object.fromEntries(Object.entries(REQUESTS).map(([name, schema]) => [name, jsonSchemaOf(schema, 'input')])),
        ...Object.fromEntries(Object.entries(ANSWERS).map(([name, schema]) => [name, jsonSchemaOf(schema, 'output')])),
      },
      securitySchemes: SECURITY_SCHEMES,
    },
  };
}
