/**
 * The fault proxy, with the stand-in behind it and the real `@anthropic-ai/sdk` client in front:
 * what the SDK sees for each fault, how `classifyModelError` turns that into a Temporal failure,
 * that untouched traffic passes byte for byte, and the command line's rule syntax.
 */
import Anthropic, {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  NotFoundError,
  OverloadedError,
  PermissionDeniedError,
  RateLimitError,
} from '@anthropic-ai/sdk';
import { ApplicationFailure } from '@temporalio/common';
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { types } from 'node:util';
import { classifyModelError } from '../activities/model-errors';
import { FailureTypes } from '../contract/failures';
import {
  FaultRuleError,
  formatRule,
  parseRule,
  startFaultProxy,
  type FaultProxy,
  type FaultRule,
} from '../standin/proxy';
import { startStandIn, type StandIn } from '../standin/server';

const ROOT = path.join(__dirname, '..');

const FINDINGS_SCHEMA: Anthropic.Tool['input_schema'] = {
  type: 'object',
  properties: { summary: { type: 'string' }, findings: { type: 'string' } },
};
const REPORT_SCHEMA: Anthropic.Tool['input_schema'] = {
  type: 'object',
  properties: { title: { type: 'string' }, markdown: { type: 'string' } },
};

/** A request forcing one tool, as Baton's activities send them. */
function forced(tool: 'submit_findings' | 'submit_report'): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model: 'claude-proxy-test',
    max_tokens: 512,
    messages: [{ role: 'user', content: 'What is the boiling point of water?' }],
    tools: [
      {
        name: tool,
        description: 'Submit the answer.',
        input_schema: tool === 'submit_findings' ? FINDINGS_SCHEMA : REPORT_SCHEMA,
      },
    ],
    tool_choice: { type: 'tool', name: tool },
  };
}

/** A request with a registry tool besides the answer tool: `tool_choice: any`, as Baton sends it. */
const ANY_FINDINGS: Anthropic.MessageCreateParamsNonStreaming = {
  ...forced('submit_findings'),
  tools: [
    { name: 'lookup', description: 'Look something up.', input_schema: { type: 'object', properties: {} } },
    { name: 'submit_findings', description: 'Submit the answer.', input_schema: FINDINGS_SCHEMA },
  ],
  tool_choice: { type: 'any' },
};

/** A request that forces no tool: the stand-in answers with text. */
const PLAIN: Anthropic.MessageCreateParamsNonStreaming = {
  model: 'claude-proxy-test',
  max_tokens: 256,
  messages: [{ role: 'user', content: 'Hello?' }],
};

/** Any SDK error class, for `toBeInstanceOf` (their constructors differ in the status they take). */
type ErrorClass = abstract new (...args: never[]) => APIError;

/** The error a promise rejects with; fails the test if it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the model call to fail');
}

/** A POST through node:http, with full control of the headers sent. */
function rawRequest(
  url: string,
  body: string,
  headers: http.OutgoingHttpHeaders,
): Promise<{ status?: number; statusMessage?: string; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode,
          statusMessage: res.statusMessage,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Narrows a classification result to an ApplicationFailure, failing the test if it is not one. */
function asFailure(value: unknown): ApplicationFailure {
  expect(value).toBeInstanceOf(ApplicationFailure);
  return value as ApplicationFailure;
}

/**
 * Whether Temporal would retry what an activity throws: a retryable ApplicationFailure, or any
 * other error (which Temporal wraps as a retryable failure of that error's name).
 */
function temporalWouldRetry(thrown: unknown): boolean {
  // isNativeError, not instanceof: errors from Node's fetch come from outside Jest's sandbox realm.
  return thrown instanceof ApplicationFailure ? !thrown.nonRetryable : types.isNativeError(thrown);
}

/** The name of an error's class; realm-safe where `toBeInstanceOf` is not (see above). */
function errorName(err: unknown): string | undefined {
  return types.isNativeError(err) ? err.name : undefined;
}

function toolUse(message: Anthropic.Message): Anthropic.ToolUseBlock | undefined {
  return message.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
}

describe('fault proxy in front of the stand-in, seen through the real SDK', () => {
  let standIn: StandIn;
  let proxy: FaultProxy;
  let client: Anthropic;

  beforeAll(async () => {
    standIn = await startStandIn();
    proxy = await startFaultProxy({ target: standIn.url });
    client = new Anthropic({ apiKey: 'test-key', baseURL: proxy.url, maxRetries: 0 });
  });
  afterEach(() => {
    proxy.clear();
  });
  afterAll(async () => {
    await proxy.close();
    await standIn.close();
  });

  describe('untouched requests', () => {
    test.each([false, true])(
      'are forwarded with the same tool input as a direct call (streaming: %s)',
      async (streaming) => {
        const direct = new Anthropic({ apiKey: 'test-key', baseURL: standIn.url, maxRetries: 0 });
        const call = (c: Anthropic): Promise<Anthropic.Message> =>
          streaming
            ? c.messages.stream(forced('submit_findings')).finalMessage()
            : c.messages.create(forced('submit_findings'));
        const viaProxy = await call(client);
        const straight = await call(direct);
        expect(toolUse(viaProxy)?.input).toEqual(toolUse(straight)?.input);
        expect(toolUse(viaProxy)?.input).toMatchObject({ summary: expect.stringContaining('stand-in') });
        expect(viaProxy.usage).toEqual(straight.usage);
      },
    );

    test.each([false, true])(
      'reach the client byte for byte: status, headers and body (streaming: %s)',
      async (stream) => {
        // Two fresh stand-ins count requests alike, so their replies (ids included) are identical.
        const a = await startStandIn();
        const b = await startStandIn();
        const front = await startFaultProxy({ target: b.url });
        try {
          const post = (base: string): Promise<Response> =>
            fetch(`${base}/v1/messages`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-api-key': 'k' },
              body: JSON.stringify({ ...forced('submit_report'), stream }),
            });
          const straight = await post(a.url);
          const viaProxy = await post(front.url);
          expect(viaProxy.status).toBe(straight.status);
          for (const name of ['content-type', 'request-id', 'cache-control', 'content-length']) {
            expect(viaProxy.headers.get(name)).toBe(straight.headers.get(name));
          }
          expect(await viaProxy.text()).toBe(await straight.text());
          expect(front.stats()).toEqual({ requests: 1, forwarded: 1, injected: {} });
        } finally {
          await front.close();
          await a.close();
          await b.close();
        }
      },
    );

    test('keep their body, path prefix and end-to-end headers; hop-by-hop headers stay behind', async () => {
      // A target that echoes what it received, mounted under a path prefix like a gateway.
      const seen: Array<{ method?: string; url?: string; headers: http.IncomingHttpHeaders; body: string }> =
        [];
      const echo = http.createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          seen.push({
            method: req.method,
            url: req.url,
            headers: req.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
          res.writeHead(207, 'Echoed', {
            'content-type': 'application/json',
            'x-gateway': 'yes',
            // Hop-by-hop: by name, and by being listed in `connection`.
            'proxy-authenticate': 'Basic',
            connection: 'x-hop-reply',
            'x-hop-reply': 'this link only',
          });
          res.end('{"ok":true}');
        });
      });
      await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
      const echoPort = (echo.address() as AddressInfo).port;
      const front = await startFaultProxy({
        target: `http://127.0.0.1:${echoPort}/gateway/anthropic/`,
        rules: [{ kind: 'status', status: 500, count: Infinity }],
      });
      try {
        // Odd spacing and key order: a proxy that re-serialised the JSON would change them.
        const body = '{ "stream":false,\n  "model": "m", "max_tokens": 1, "messages": [] , "é": "ü" }';
        // node:http rather than fetch, which refuses to send connection-level headers.
        const res = await rawRequest(`${front.url}/v1/models?limit=2`, body, {
          'x-api-key': 'secret',
          'anthropic-version': '2023-06-01',
          'x-custom': 'kept',
          'proxy-authorization': 'Basic c2VjcmV0',
          connection: 'keep-alive, x-hop',
          'x-hop': 'this link only',
        });
        // Rules only apply to POST /v1/messages: the 500 rule leaves this path alone.
        expect(res.status).toBe(207);
        expect(res.statusMessage).toBe('Echoed');
        expect(res.headers['x-gateway']).toBe('yes');
        expect(res.headers['proxy-authenticate']).toBeUndefined();
        expect(res.headers['x-hop-reply']).toBeUndefined();
        expect(res.body).toBe('{"ok":true}');

        const [request] = seen;
        expect(request).toMatchObject({
          method: 'POST',
          url: '/gateway/anthropic/v1/models?limit=2',
          body,
          headers: {
            'x-api-key': 'secret',
            'anthropic-version': '2023-06-01',
            'x-custom': 'kept',
            host: `127.0.0.1:${echoPort}`,
            'content-length': String(Buffer.byteLength(body)),
          },
        });
        expect(request?.headers['proxy-authorization']).toBeUndefined();
        expect(request?.headers['x-hop']).toBeUndefined();
        expect(front.stats()).toEqual({ requests: 1, forwarded: 1, injected: {} });
      } finally {
        await front.close();
        await new Promise((resolve) => echo.close(resolve));
      }
    });

    test('an unreachable target is a 502 api_error: InternalServerError, retryable', async () => {
      const gone = await startStandIn();
      const target = gone.url;
      await gone.close();
      const front = await startFaultProxy({ target });
      try {
        const c = new Anthropic({ apiKey: 'k', baseURL: front.url, maxRetries: 0 });
        const err = await rejection(c.messages.create(PLAIN));
        expect(err).toBeInstanceOf(InternalServerError);
        expect((err as APIError).status).toBe(502);
        expect((err as APIError).message).toMatch(/fault proxy: cannot reach/);
        const failure = asFailure(classifyModelError(err, 'writer'));
        expect(failure.type).toBe(FailureTypes.ModelUnavailable);
        expect(failure.nonRetryable).toBe(false);
      } finally {
        await front.close();
      }
    });
  });

  describe('status rules', () => {
    // [status, retry-after, SDK error class, error.type, failure type, non-retryable]
    test.each<[number, number | undefined, ErrorClass, string, string, boolean]>([
      [429, 7, RateLimitError, 'rate_limit_error', FailureTypes.ModelUnavailable, false],
      [529, 3, OverloadedError, 'overloaded_error', FailureTypes.ModelUnavailable, false],
      [500, undefined, InternalServerError, 'api_error', FailureTypes.ModelUnavailable, false],
      [400, undefined, BadRequestError, 'invalid_request_error', FailureTypes.ModelRequestInvalid, true],
      [401, undefined, AuthenticationError, 'authentication_error', FailureTypes.ModelAuthFailed, true],
      [403, undefined, PermissionDeniedError, 'permission_error', FailureTypes.ModelAuthFailed, true],
      [404, undefined, NotFoundError, 'not_found_error', FailureTypes.ModelRequestInvalid, true],
    ])(
      '%i (retry-after %s) → %p with error type %s → %s, nonRetryable %s',
      async (status, retryAfterSeconds, errorClass, errorType, failureType, nonRetryable) => {
        const before = standIn.stats().requests;
        proxy.add({ kind: 'status', status, retryAfterSeconds, count: 2 });
        // Both ways Baton could call: a plain create, and the stream its activities use.
        const errors = [
          await rejection(client.messages.create(forced('submit_findings'))),
          await rejection(client.messages.stream(forced('submit_findings')).finalMessage()),
        ];
        for (const err of errors) {
          expect(err).toBeInstanceOf(errorClass);
          const apiError = err as APIError;
          expect(apiError.status).toBe(status);
          expect(apiError.error).toMatchObject({ type: 'error', error: { type: errorType } });
          expect(apiError.requestID).toMatch(/^req_faultproxy_\d+$/);
          expect(apiError.headers?.get('retry-after') ?? undefined).toBe(
            retryAfterSeconds === undefined ? undefined : String(retryAfterSeconds),
          );

          const failure = asFailure(classifyModelError(err, 'researcher'));
          expect(failure.type).toBe(failureType);
          expect(failure.nonRetryable).toBe(nonRetryable);
          // A number Duration is milliseconds; only a retry-after sets it.
          expect(failure.nextRetryDelay).toBe(
            retryAfterSeconds === undefined ? undefined : retryAfterSeconds * 1000,
          );
          expect(failure.message).toMatch(
            new RegExp(`^agent "researcher": model API answered ${status}: Fault proxy`),
          );
        }
        // Answered by the proxy itself: the stand-in never heard of these calls.
        expect(standIn.stats().requests).toBe(before);
      },
    );
  });

  test('delay forwards the request after the pause', async () => {
    proxy.add({ kind: 'delay', ms: 300 });
    const started = Date.now();
    const message = await client.messages.stream(forced('submit_findings')).finalMessage();
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(toolUse(message)?.name).toBe('submit_findings');
  });

  test('hang is caught by the client timeout: APIConnectionTimeoutError, retryable', async () => {
    const before = standIn.stats().requests;
    proxy.add({ kind: 'hang' });
    const impatient = new Anthropic({ apiKey: 'k', baseURL: proxy.url, maxRetries: 0, timeout: 300 });
    const started = Date.now();
    const err = await rejection(impatient.messages.create(forced('submit_findings')));
    expect(err).toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(5000);
    const failure = asFailure(classifyModelError(err, 'researcher'));
    expect(failure.type).toBe(FailureTypes.ModelUnavailable);
    expect(failure.nonRetryable).toBe(false);
    expect(standIn.stats().requests).toBe(before);
  });

  test('closing the proxy cuts a hanging request: APIConnectionError', async () => {
    const front = await startFaultProxy({ target: standIn.url, rules: [{ kind: 'hang' }] });
    const patient = new Anthropic({ apiKey: 'k', baseURL: front.url, maxRetries: 0, timeout: 60_000 });
    const call = rejection(patient.messages.create(PLAIN));
    for (let i = 0; i < 500 && front.stats().requests === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await front.close();
    const err = await call;
    expect(err).toBeInstanceOf(APIConnectionError);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  describe('drop-mid-stream', () => {
    test('by default cuts right after the first event: AnthropicError("terminated"), retryable', async () => {
      proxy.add({ kind: 'drop-mid-stream' });
      const stream = client.messages.stream(forced('submit_findings'));
      const events: string[] = [];
      stream.on('streamEvent', (event) => events.push(event.type));
      const err = await rejection(stream.finalMessage());
      expect(err).toBeInstanceOf(AnthropicError);
      // Neither an HTTP error nor a connection failure: the 200 had arrived when the body broke off.
      expect(err).not.toBeInstanceOf(APIError);
      // Outside Jest it is "terminated" with the TypeError as cause; inside, the TypeError comes from
      // another realm, so the SDK wraps it as String(error) instead.
      expect((err as Error).message).toMatch(/^(TypeError: )?terminated$/);
      expect(events).toEqual(['message_start']);
      const failure = asFailure(classifyModelError(err, 'researcher'));
      expect(failure.type).toBe(FailureTypes.ModelUnavailable);
      expect(failure.nonRetryable).toBe(false);
      expect(failure.message).toMatch(/the model call broke off: (TypeError: )?terminated/);
    });

    test.each([0, 40, 100_000])('after-bytes %i still breaks the stream', async (afterBytes) => {
      proxy.add({ kind: 'drop-mid-stream', afterBytes });
      const err = await rejection(client.messages.stream(forced('submit_findings')).finalMessage());
      expect(err).toBeInstanceOf(AnthropicError);
      expect(temporalWouldRetry(classifyModelError(err, 'researcher'))).toBe(true);
    });

    test('on a non-streaming call the SDK throws a bare TypeError("terminated")', async () => {
      proxy.add({ kind: 'drop-mid-stream' });
      const err = await rejection(client.messages.create(forced('submit_findings')));
      // Not wrapped by the SDK (the body is read after the APIError checks), so classifyModelError
      // cannot recognise it; Temporal still retries it as a plain error. Baton always streams.
      expect(errorName(err)).toBe('TypeError');
      expect(err).not.toBeInstanceOf(AnthropicError);
      expect((err as Error).message).toBe('terminated');
      expect(temporalWouldRetry(classifyModelError(err, 'researcher'))).toBe(true);
    });
  });

  describe('truncate-json', () => {
    test('a non-streaming reply is cut in half with a matching content-length: SyntaxError', async () => {
      proxy.add({ kind: 'truncate-json' });
      const err = await rejection(client.messages.create(forced('submit_findings')));
      // response.json() fails inside the SDK, unwrapped; as above, Temporal retries it as a plain error.
      expect(errorName(err)).toBe('SyntaxError');
      expect(err).not.toBeInstanceOf(AnthropicError);
      expect(temporalWouldRetry(classifyModelError(err, 'researcher'))).toBe(true);

      proxy.add({ kind: 'truncate-json' });
      const res = await fetch(`${proxy.url}/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': 'k' },
        body: JSON.stringify(forced('submit_findings')),
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
      expect(text.startsWith('{"id":"msg_standin_')).toBe(true);
      expect(() => JSON.parse(text) as unknown).toThrow(/JSON/);
    });

    test('a stream gets its first tool input corrupted: AnthropicError caused by a SyntaxError, retryable', async () => {
      proxy.add({ kind: 'truncate-json' });
      const err = await rejection(client.messages.stream(forced('submit_findings')).finalMessage());
      expect(err).toBeInstanceOf(AnthropicError);
      expect((err as Error & { cause?: unknown }).cause).toBeInstanceOf(SyntaxError);
      const failure = asFailure(classifyModelError(err, 'researcher'));
      expect(failure.type).toBe(FailureTypes.ModelUnavailable);
      expect(failure.nonRetryable).toBe(false);
    });

    test('a stream without tool input passes unchanged', async () => {
      proxy.add({ kind: 'truncate-json' });
      const message = await client.messages.stream(PLAIN).finalMessage();
      expect(message.content[0]).toMatchObject({ type: 'text', text: expect.stringContaining('stand-in') });
      expect(proxy.stats().injected['truncate-json']).toBeGreaterThanOrEqual(1);
    });
  });

  test.each([false, true])(
    'refusal answers 200 with stop_reason "refusal" and no tool_use (streaming: %s)',
    async (streaming) => {
      const before = standIn.stats().requests;
      proxy.add({ kind: 'refusal' });
      const message = streaming
        ? await client.messages.stream(forced('submit_findings')).finalMessage()
        : await client.messages.create(forced('submit_findings'));
      expect(message.stop_reason).toBe('refusal');
      expect(toolUse(message)).toBeUndefined();
      expect(message.content).toEqual([{ type: 'text', text: expect.stringContaining('fault proxy') }]);
      expect(message.model).toBe('claude-proxy-test');
      expect(standIn.stats().requests).toBe(before);
    },
  );

  describe('count, match and order', () => {
    test('count: the rule applies to that many requests, then traffic flows again', async () => {
      proxy.add({ kind: 'status', status: 529, count: 2 });
      await expect(client.messages.create(PLAIN)).rejects.toThrow(OverloadedError);
      await expect(client.messages.create(PLAIN)).rejects.toThrow(OverloadedError);
      await expect(client.messages.create(PLAIN)).resolves.toMatchObject({ type: 'message' });
    });

    test('count Infinity never runs out; clear() removes it', async () => {
      proxy.add({ kind: 'status', status: 503, count: Infinity });
      for (let i = 0; i < 5; i++)
        await expect(client.messages.create(PLAIN)).rejects.toThrow(InternalServerError);
      proxy.clear();
      await expect(client.messages.create(PLAIN)).resolves.toMatchObject({ type: 'message' });
    });

    test('match.tool: only calls that must use that tool, forced or as the submit_* tool of tool_choice any', async () => {
      proxy.add({ kind: 'status', status: 500, count: Infinity, match: { tool: 'submit_findings' } });
      await expect(client.messages.create(forced('submit_report'))).resolves.toMatchObject({
        stop_reason: 'tool_use',
      });
      await expect(client.messages.create(PLAIN)).resolves.toMatchObject({ stop_reason: 'end_turn' });
      await expect(client.messages.create(forced('submit_findings'))).rejects.toThrow(InternalServerError);
      await expect(client.messages.create(ANY_FINDINGS)).rejects.toThrow(InternalServerError);
    });

    test('rules apply in order; the first that matches and has uses left wins', async () => {
      proxy.add({ kind: 'status', status: 400, match: { tool: 'submit_report' } });
      proxy.add({ kind: 'status', status: 429, count: 2 });
      // The findings call skips the report-only rule and uses the general one.
      await expect(client.messages.create(forced('submit_findings'))).rejects.toThrow(RateLimitError);
      await expect(client.messages.create(forced('submit_report'))).rejects.toThrow(BadRequestError);
      // The report rule is used up: the next report call falls to the 429 rule's last use.
      await expect(client.messages.create(forced('submit_report'))).rejects.toThrow(RateLimitError);
      await expect(client.messages.create(forced('submit_report'))).resolves.toMatchObject({
        stop_reason: 'tool_use',
      });
    });
  });

  test('stats count requests, forwarded ones and injected faults by kind', async () => {
    const front = await startFaultProxy({
      target: standIn.url,
      rules: [
        { kind: 'status', status: 429, retryAfterSeconds: 1 },
        { kind: 'refusal' },
        { kind: 'delay', ms: 10 },
        { kind: 'drop-mid-stream' },
      ],
    });
    try {
      const c = new Anthropic({ apiKey: 'k', baseURL: front.url, maxRetries: 0 });
      await rejection(c.messages.create(PLAIN));
      await c.messages.create(PLAIN);
      await c.messages.create(PLAIN);
      await rejection(c.messages.stream(PLAIN).finalMessage());
      await c.messages.create(PLAIN);
      expect(front.stats()).toEqual({
        requests: 5,
        forwarded: 3,
        injected: { '429': 1, refusal: 1, delay: 1, 'drop-mid-stream': 1 },
      });
    } finally {
      await front.close();
    }
  });

  test.each<[string, FaultRule]>([
    ['status 200', { kind: 'status', status: 200 }],
    ['count 0', { kind: 'hang', count: 0 }],
    ['fractional count', { kind: 'hang', count: 1.5 }],
    ['negative delay', { kind: 'delay', ms: -1 }],
    ['negative after-bytes', { kind: 'drop-mid-stream', afterBytes: -5 }],
    ['bad tool name', { kind: 'refusal', match: { tool: 'no spaces' } }],
  ])('add() refuses an invalid rule: %s', (_name, rule) => {
    expect(() => proxy.add(rule)).toThrow(FaultRuleError);
  });
});

describe('parseRule: the command line rule syntax', () => {
  test.each<[string, FaultRule]>([
    ['429', { kind: 'status', status: 429 }],
    ['429:retry-after=2:count=3', { kind: 'status', status: 429, retryAfterSeconds: 2, count: 3 }],
    [
      '529:retry-after=0.5:body=anthropic',
      { kind: 'status', status: 529, retryAfterSeconds: 0.5, body: 'anthropic' },
    ],
    ['delay:ms=1500', { kind: 'delay', ms: 1500 }],
    ['hang:tool=submit_findings', { kind: 'hang', match: { tool: 'submit_findings' } }],
    ['drop-mid-stream', { kind: 'drop-mid-stream' }],
    ['drop-mid-stream:after-bytes=0:count=inf', { kind: 'drop-mid-stream', afterBytes: 0, count: Infinity }],
    ['truncate-json:count=Infinity', { kind: 'truncate-json', count: Infinity }],
    ['refusal:tool=submit_report:count=2', { kind: 'refusal', match: { tool: 'submit_report' }, count: 2 }],
  ])('%s', (text, rule) => {
    expect(parseRule(text)).toEqual(rule);
    // formatRule writes it back in a form that parses to the same rule.
    expect(parseRule(formatRule(rule))).toEqual(rule);
  });

  test.each<[string, RegExp]>([
    ['', /missing kind/],
    ['teapot', /unknown kind "teapot"/],
    ['200', /status must be an HTTP error from 400 to 599, got 200/],
    ['4290', /unknown kind "4290"/],
    ['429:retry-after=soon', /retry-after must be a number of seconds, got "soon"/],
    ['429:retry-after=-1', /retry-after must be a number of seconds, got "-1"/],
    ['429:count=0', /count must be a whole number of at least 1/],
    ['429:count=1e3', /count must be a whole number, got "1e3"/],
    ['429:count=3:count=4', /count given twice/],
    ['429:count', /"count" is not key=value/],
    ['429:count=', /count needs a value/],
    ['429:ms=5', /unknown key "ms" for 429/],
    ['429:body=html', /body must be "anthropic", got "html"/],
    ['delay', /delay needs ms=N/],
    ['delay:ms=fast', /ms must be a whole number, got "fast"/],
    ['delay:ms=99999999999', /ms must be a whole number of milliseconds up to/],
    ['hang:after-bytes=3', /unknown key "after-bytes" for hang/],
    ['drop-mid-stream:after-bytes=half', /after-bytes must be a whole number, got "half"/],
    ['refusal:tool=a b', /"a b" is not a valid tool name/],
  ])('refuses %p', (text, message) => {
    expect(() => parseRule(text)).toThrow(FaultRuleError);
    expect(() => parseRule(text)).toThrow(message);
    // Every message quotes the rule as written, so the CLI can point at it.
    expect(() => parseRule(text)).toThrow(`rule "${text}"`);
  });
});

describe('npm run fault-proxy', () => {
  /** Runs the CLI; resolves with its exit code and output once it exits. */
  function runCli(
    args: string[],
    whileRunning?: (stdout: () => string, stop: () => void) => Promise<void>,
  ): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'tsx'), ['standin/proxy-main.ts', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return (async () => {
      if (whileRunning) {
        let stopped = false;
        try {
          await whileRunning(
            () => stdout,
            () => {
              stopped = true;
              child.kill('SIGTERM');
            },
          );
        } finally {
          // Only when the test failed before stopping it: a second SIGTERM during the graceful
          // shutdown would kill the process by signal (exit 143) and make the test flaky.
          if (!stopped && child.exitCode === null) child.kill('SIGTERM');
        }
      }
      const code = await exited;
      return { code, stdout, stderr };
    })();
  }

  test.each<[string[], RegExp]>([
    [['--target', 'http://127.0.0.1:1', '--rule', 'hang:count=0'], /--rule "hang:count=0": count must be/],
    [['--target', 'http://127.0.0.1:1', '--rule=teapot'], /--rule "teapot": unknown kind "teapot"/],
    [['--target', 'ftp://example.invalid'], /--target must be an http:\/\/ or https:\/\/ URL, got "ftp/],
    [
      ['--target', 'http://127.0.0.1:1', '--port', '99999'],
      /--port must be a whole number from 0 to 65535, got "99999"/,
    ],
    [['--rule', '429'], /--target is required/],
    [['--target', 'http://127.0.0.1:1', '--bogus'], /unknown flag "--bogus"/],
  ])('exits 2 on a bad command line: %p', async (args, message) => {
    const { code, stderr } = await runCli(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('usage: npm run fault-proxy');
  });

  test('--help documents the rule syntax', async () => {
    const { code, stdout } = await runCli(['--help']);
    expect(code).toBe(0);
    for (const word of [
      'retry-after=',
      'ms=N',
      'after-bytes=N',
      'count=inf',
      'tool=NAME',
      'truncate-json',
      'refusal',
    ]) {
      expect(stdout).toContain(word);
    }
  });

  test('serves the rules given, prints how to point a worker at it, and stops on SIGTERM', async () => {
    const standIn = await startStandIn();
    try {
      const { code, stdout } = await runCli(
        ['--target', standIn.url, '--port', '0', '--rule', '429:retry-after=2'],
        async (output, stop) => {
          const deadline = Date.now() + 30_000;
          let url: string | undefined;
          while (url === undefined && Date.now() < deadline) {
            url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output())?.[1];
            if (url === undefined) await new Promise((r) => setTimeout(r, 50));
          }
          expect(url).toBeDefined();
          const c = new Anthropic({ apiKey: 'k', baseURL: url, maxRetries: 0 });
          const err = await rejection(c.messages.create(PLAIN));
          expect(err).toBeInstanceOf(RateLimitError);
          expect((err as APIError).headers?.get('retry-after')).toBe('2');
          await expect(c.messages.create(PLAIN)).resolves.toMatchObject({ type: 'message' });
          stop();
        },
      );
      expect(code).toBe(0);
      expect(stdout).toMatch(/1\. 429:retry-after=2/);
      expect(stdout).toMatch(
        /ANTHROPIC_BASE_URL=http:\/\/127\.0\.0\.1:\d+ ANTHROPIC_API_KEY=offline-stand-in npm run worker/,
      );
      expect(stdout).toMatch(/→ 429:retry-after=2 \(rule 1, 0 left\)/);
      expect(stdout).toMatch(/→ forwarded/);
      expect(stdout).toMatch(/SIGTERM received, shutting down \(2 requests, 1 forwarded/);
    } finally {
      await standIn.close();
    }
  });
});
