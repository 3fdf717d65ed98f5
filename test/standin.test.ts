/**
 * The stand-in model, driven by the real `@anthropic-ai/sdk` client: if the SDK parses its replies,
 * streams and errors, Baton's activities will too.
 */
import { TOOL_REGISTRY } from '../activities/tools';
import Anthropic, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  AuthenticationError,
  BadRequestError,
  InternalServerError,
  RateLimitError,
} from '@anthropic-ai/sdk';
import { z } from 'zod';
import { startStandIn, type StandIn, type StandInRequest } from '../standin/server';

const MODEL = 'claude-stand-in-test';

type InputSchema = Anthropic.Tool['input_schema'];

interface PlanStep {
  id: string;
  agent: string;
  question: string;
  dependsOn: string[];
  decompose: boolean;
}
interface PlanInput {
  rationale: string;
  steps: PlanStep[];
}
interface FindingsInput {
  summary: string;
  findings: string;
  sources: Array<{ title: string; url: string }>;
}
interface ReportInput {
  title: string;
  summary: string;
  markdown: string;
}

/** The plan tool's schema the way Baton builds it: zod → JSON schema, agents as an enum, steps capped. */
function planSchema(agents: [string, ...string[]], maxSteps: number): InputSchema {
  const step = z.object({
    id: z.string(),
    agent: z.enum(agents),
    question: z.string(),
    dependsOn: z.array(z.string()),
    decompose: z.boolean(),
  });
  const plan = z.object({ rationale: z.string(), steps: z.array(step).min(1).max(maxSteps) });
  return z.toJSONSchema(plan) as InputSchema;
}

/** The same plan schema, wrapped in `$defs`, `$ref` and `anyOf` the way other generators emit it. */
function wrappedPlanSchema(agents: string[], maxSteps: number): InputSchema {
  return {
    type: 'object',
    $defs: {
      Agent: { anyOf: [{ type: 'string', enum: agents }] },
      Step: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          agent: { $ref: '#/$defs/Agent' },
          question: { type: 'string' },
          dependsOn: { type: 'array', items: { type: 'string' } },
          decompose: { type: 'boolean' },
        },
      },
    },
    properties: {
      rationale: { type: 'string' },
      steps: { anyOf: [{ type: 'array', maxItems: maxSteps, items: { $ref: '#/$defs/Step' } }] },
    },
  };
}

const FINDINGS_SCHEMA: InputSchema = {
  type: 'object',
  properties: {
    summary: { type: 'string' },
    findings: { type: 'string' },
    sources: {
      type: 'array',
      items: { type: 'object', properties: { title: { type: 'string' }, url: { type: 'string' } } },
    },
  },
};

const REPORT_SCHEMA: InputSchema = {
  type: 'object',
  properties: { title: { type: 'string' }, summary: { type: 'string' }, markdown: { type: 'string' } },
};

const AGENTS_XML = [
  '<agents>',
  '<agent id="researcher">Finds and summarises sources for the analyst.</agent>',
  '<agent id="analyst">Compares findings and draws conclusions.</agent>',
  '<agent id="fact-checker">Verifies claims against sources.</agent>',
  '</agents>',
].join('\n');

function planPrompt(
  question: string,
  opts: { depth?: number; maxDepth?: number; maxSteps?: number; extra?: string } = {},
): string {
  const { depth = 0, maxDepth = 1, maxSteps = 6, extra = '' } = opts;
  return [
    `<question>\n${question}\n</question>`,
    `<limits depth="${depth}" max_depth="${maxDepth}" max_steps="${maxSteps}" />`,
    AGENTS_XML,
    extra,
  ].join('\n');
}

function forced(name: string, schema: InputSchema, text: string): Anthropic.MessageCreateParamsNonStreaming {
  return {
    model: MODEL,
    max_tokens: 1024,
    system: 'You are Baton.',
    messages: [{ role: 'user', content: text }],
    tools: [{ name, description: `Submit via ${name}.`, input_schema: schema }],
    tool_choice: { type: 'tool', name },
  };
}

function toolInput<T>(message: Anthropic.Message): T {
  const block = message.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
  if (!block) throw new Error(`no tool_use block in ${JSON.stringify(message.content)}`);
  return block.input as T;
}

/** Every step id in `dependsOn` exists and the steps have no cycle (ids are only allowed to point back). */
function expectWellFormed(plan: PlanInput): void {
  const ids = plan.steps.map((s) => s.id);
  expect(new Set(ids).size).toBe(ids.length);
  plan.steps.forEach((step, i) => {
    for (const dep of step.dependsOn) expect(ids.slice(0, i)).toContain(dep);
    expect(step.question.length).toBeGreaterThan(0);
    expect(step.question.length).toBeLessThanOrEqual(2000);
  });
}

/** Resolves to the error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

describe('stand-in model', () => {
  let standIn: StandIn;
  let client: Anthropic;

  beforeAll(async () => {
    standIn = await startStandIn();
    client = new Anthropic({ apiKey: 'test-key', baseURL: standIn.url, maxRetries: 0 });
  });
  afterAll(async () => {
    await standIn.close();
  });
  beforeEach(() => standIn.resetStats());

  describe('replies the SDK parses', () => {
    it('answers a forced tool without streaming, with ids, stop reason and usage', async () => {
      const message = await client.messages.create(
        forced(
          'submit_findings',
          FINDINGS_SCHEMA,
          '<task step="s1" agent="researcher">\n<question>Q</question>',
        ),
      );
      expect(message.id).toMatch(/^msg_standin_\d+$/);
      expect(message.model).toBe(MODEL);
      expect(message.stop_reason).toBe('tool_use');
      expect(message.content).toHaveLength(1);
      const block = message.content[0];
      expect(block).toMatchObject({ type: 'tool_use', name: 'submit_findings' });
      expect(block?.type === 'tool_use' && block.id).toMatch(/^toolu_standin_\d+$/);
      expect(message.usage.input_tokens).toBeGreaterThan(0);
      expect(message.usage.output_tokens).toBeGreaterThan(0);
      expect(message.usage.cache_read_input_tokens).toBe(0);
    });

    it('streams a forced tool that finalMessage() assembles into the same input', async () => {
      const params = forced(
        'submit_plan',
        planSchema(['researcher', 'analyst'], 6),
        planPrompt('Why is the sky blue?'),
      );
      const plain = await client.messages.create(params);
      const stream = client.messages.stream(params);
      const types: string[] = [];
      stream.on('streamEvent', (event) => types.push(event.type));
      const streamed = await stream.finalMessage();

      expect(toolInput<PlanInput>(streamed)).toEqual(toolInput<PlanInput>(plain));
      expect(streamed.stop_reason).toBe('tool_use');
      expect(streamed.usage.input_tokens).toBe(plain.usage.input_tokens);
      expect(streamed.usage.output_tokens).toBe(plain.usage.output_tokens);
      expect(types[0]).toBe('message_start');
      expect(types.filter((t) => t === 'content_block_delta').length).toBeGreaterThan(1);
      expect(types.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    });

    it('answers with text when no tool is forced, streamed or not', async () => {
      const params: Anthropic.MessageCreateParamsNonStreaming = {
        model: MODEL,
        max_tokens: 100,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'Hello there' }] }],
      };
      const plain = await client.messages.create(params);
      expect(plain.stop_reason).toBe('end_turn');
      const first = plain.content[0];
      const text = first?.type === 'text' ? first.text : '';
      expect(text).toContain('[offline stand-in model]');
      expect(text).toContain('Hello there');
      const streamed = await client.messages.stream(params).finalMessage();
      expect(streamed.content).toEqual([{ type: 'text', text }]);
    });

    it('with tool_choice "any", accepts a server tool from the registry and calls the answer tool', async () => {
      const params = forced('submit_findings', FINDINGS_SCHEMA, '<question>Q</question>');
      const search = TOOL_REGISTRY.web_search; // a server tool: a versioned type and no input_schema
      const message = await client.messages.create({
        ...params,
        tools: [search, ...(params.tools ?? [])],
        tool_choice: { type: 'any' },
      });
      expect(message.content[0]).toMatchObject({ type: 'tool_use', name: 'submit_findings' });
      expect(toolInput<FindingsInput>(message).sources).toHaveLength(2);
      expect(standIn.stats().byTool).toEqual({ submit_findings: 1 });
    });

    it('fills any other forced tool from its schema', async () => {
      const schema: InputSchema = {
        type: 'object',
        properties: {
          name: { type: 'string' },
          count: { type: 'integer', minimum: 3 },
          ok: { type: 'boolean' },
          mode: { type: 'string', enum: ['fast', 'slow'] },
          tags: { type: 'array', items: { type: 'string' } },
          link: { type: 'string', format: 'uri' },
        },
      };
      const input = toolInput<Record<string, unknown>>(
        await client.messages.create(forced('other_tool', schema, 'x')),
      );
      expect(input).toEqual({
        name: '[offline stand-in model] name',
        count: 3,
        ok: false,
        mode: 'fast',
        tags: ['[offline stand-in model] tags'],
        link: 'https://example.invalid/standin/link',
      });
    });

    it('lets the respond hook override a reply, and falls through when it returns undefined', async () => {
      const seen: StandInRequest[] = [];
      const hooked = await startStandIn({
        respond: (req) => {
          seen.push(req);
          return req.userText.includes('override')
            ? { kind: 'tool', input: { overridden: true } }
            : undefined;
        },
      });
      try {
        const hookedClient = new Anthropic({ apiKey: 'test-key', baseURL: hooked.url, maxRetries: 0 });
        const over = await hookedClient.messages.create(
          forced('submit_report', REPORT_SCHEMA, 'please override'),
        );
        expect(toolInput(over)).toEqual({ overridden: true });
        const normal = await hookedClient.messages.create(
          forced('submit_report', REPORT_SCHEMA, '<question>Q</question>'),
        );
        expect(toolInput<ReportInput>(normal).title).toContain('Stand-in report');
        expect(seen[0]).toMatchObject({ toolName: 'submit_report', userText: 'please override' });
        expect(seen[0]?.headers['authorization']).toBe('Bearer test-key');
      } finally {
        await hooked.close();
      }
    });
  });

  describe('faults', () => {
    const cases: Array<[number, new (...args: never[]) => APIError, string]> = [
      [400, BadRequestError, 'invalid_request_error'],
      [401, AuthenticationError, 'authentication_error'],
      [429, RateLimitError, 'rate_limit_error'],
      [500, InternalServerError, 'api_error'],
      [529, InternalServerError, 'overloaded_error'],
    ];
    it.each(cases)(
      'maps an injected %i to the SDK error class and body type',
      async (status, errorClass, type) => {
        standIn.inject({ status, retryAfterSeconds: status === 429 ? 7 : undefined });
        const err = await rejection(client.messages.create(forced('submit_report', REPORT_SCHEMA, 'q')));
        expect(err).toBeInstanceOf(errorClass);
        const apiError = err as APIError;
        expect(apiError.status).toBe(status);
        expect(apiError.error).toMatchObject({ type: 'error', error: { type } });
        expect(apiError.requestID).toMatch(/^req_standin_\d+$/);
        if (status === 429) expect(apiError.headers?.get('retry-after')).toBe('7');
        expect(standIn.stats().errors).toBe(1);
      },
    );

    it('applies a fault only to the named tool, for `count` requests', async () => {
      standIn.inject({ status: 500, tool: 'submit_report', count: 2 });
      await client.messages.create(forced('submit_findings', FINDINGS_SCHEMA, 'q'));
      await expect(client.messages.create(forced('submit_report', REPORT_SCHEMA, 'q'))).rejects.toThrow(
        InternalServerError,
      );
      await expect(client.messages.create(forced('submit_report', REPORT_SCHEMA, 'q'))).rejects.toThrow(
        InternalServerError,
      );
      await client.messages.create(forced('submit_report', REPORT_SCHEMA, 'q'));
      expect(standIn.stats()).toMatchObject({
        requests: 4,
        errors: 2,
        byTool: { submit_report: 3, submit_findings: 1 },
      });
    });

    it('drops the connection: APIConnectionError without streaming, a stream error when streaming', async () => {
      standIn.inject({ kind: 'drop' });
      const err = await rejection(client.messages.create(forced('submit_report', REPORT_SCHEMA, 'q')));
      expect(err).toBeInstanceOf(APIConnectionError);

      standIn.inject({ kind: 'drop' });
      const stream = client.messages.stream(forced('submit_report', REPORT_SCHEMA, 'q'));
      const started: string[] = [];
      stream.on('streamEvent', (event) => started.push(event.type));
      await expect(stream.finalMessage()).rejects.toThrow();
      expect(started).toEqual(['message_start']);
    });

    it('hangs until the client timeout gives up', async () => {
      standIn.inject({ kind: 'hang' });
      const impatient = new Anthropic({
        apiKey: 'test-key',
        baseURL: standIn.url,
        maxRetries: 0,
        timeout: 300,
      });
      const started = Date.now();
      const err = await rejection(impatient.messages.create(forced('submit_report', REPORT_SCHEMA, 'q')));
      expect(err).toBeInstanceOf(APIConnectionTimeoutError);
      expect(Date.now() - started).toBeLessThan(5000);
      // The server notices the client going away.
      for (let i = 0; i < 50 && standIn.stats().inFlight > 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(standIn.stats().inFlight).toBe(0);
    });
  });

  it('counts concurrent requests', async () => {
    const slow = await startStandIn({ latencyMs: 200 });
    try {
      const slowClient = new Anthropic({ apiKey: 'test-key', baseURL: slow.url, maxRetries: 0 });
      await Promise.all(
        [1, 2, 3].map((i) => slowClient.messages.create(forced('submit_findings', FINDINGS_SCHEMA, `q${i}`))),
      );
      expect(slow.stats()).toEqual({
        requests: 3,
        inFlight: 0,
        maxInFlight: 3,
        byTool: { submit_findings: 3 },
        errors: 0,
      });
    } finally {
      await slow.close();
    }
  });

  describe('default plan', () => {
    const plan = async (schema: InputSchema, text: string): Promise<PlanInput> =>
      toolInput<PlanInput>(await client.messages.create(forced('submit_plan', schema, text)));

    it('obeys the agent enum and has parallel gathering, then dependent steps', async () => {
      const result = await plan(
        planSchema(['researcher', 'analyst', 'fact-checker'], 6),
        planPrompt('How do heat pumps perform in cold climates?'),
      );
      expectWellFormed(result);
      expect(result.steps.length).toBeGreaterThanOrEqual(3);
      expect(result.steps.length).toBeLessThanOrEqual(5);
      expect(result.rationale).toContain('[offline stand-in model]');
      const independent = result.steps.filter((s) => s.dependsOn.length === 0);
      expect(independent.length).toBeGreaterThanOrEqual(2);
      expect(independent.every((s) => s.agent === 'researcher')).toBe(true);
      expect(result.steps.some((s) => s.agent === 'analyst' && s.dependsOn.length >= 2)).toBe(true);
      expect(result.steps.some((s) => s.agent === 'fact-checker')).toBe(true);
      expect(result.steps[0]?.question).toContain('heat pumps');
      // depth 0 < max_depth 1: exactly the first gathering step may decompose.
      expect(result.steps.map((s) => s.decompose)).toEqual(result.steps.map((_, i) => i === 0));
    });

    it('finds the enum and maxItems through $ref and anyOf, and falls back to round-robin', async () => {
      const result = await plan(wrappedPlanSchema(['alpha', 'beta'], 4), planPrompt('Q', { maxSteps: 10 }));
      expectWellFormed(result);
      expect(result.steps.length).toBe(4);
      expect(result.steps.every((s) => ['alpha', 'beta'].includes(s.agent))).toBe(true);
      expect(new Set(result.steps.map((s) => s.agent)).size).toBe(2);
    });

    it('stays within small budgets and spent depth', async () => {
      const one = await plan(planSchema(['researcher'], 1), planPrompt('Q', { maxSteps: 1 }));
      expect(one.steps).toHaveLength(1);
      const three = await plan(
        planSchema(['researcher', 'analyst'], 3),
        planPrompt('Q', { depth: 1, maxDepth: 1 }),
      );
      expectWellFormed(three);
      expect(three.steps).toHaveLength(3);
      expect(three.steps.some((s) => s.decompose)).toBe(false);
    });

    it('adds a step quoting a change request, replacing the last one when the plan is full', async () => {
      const comment = 'Please also cover costs & maintenance in Norway.';
      const extra = `<change_request by="alice">${comment}</change_request>`;
      const roomy = await plan(planSchema(['researcher', 'analyst'], 6), planPrompt('Q', { extra }));
      expectWellFormed(roomy);
      expect(roomy.steps).toHaveLength(6);
      expect(roomy.steps[5]?.question).toContain(comment);
      expect(roomy.rationale).toContain(comment);

      const full = await plan(planSchema(['researcher', 'analyst'], 4), planPrompt('Q', { extra }));
      expectWellFormed(full);
      expect(full.steps).toHaveLength(4);
      expect(full.steps[3]?.question).toContain(comment);

      // The change step waits for every result that nothing else uses, and prefers an analyst to a gatherer.
      const small = await plan(planSchema(['researcher', 'analyst'], 3), planPrompt('Q', { extra }));
      expectWellFormed(small);
      expect(small.steps.map((s) => s.dependsOn)).toEqual([[], [], ['s1', 's2']]);
      expect(small.steps[2]).toMatchObject({ agent: 'analyst', question: expect.stringContaining(comment) });
    });
  });

  describe('default findings and report', () => {
    it('writes findings that build on the context and cite stand-in sources', async () => {
      const text = [
        '<task step="s3" agent="analyst">',
        '<question>Compare the findings</question>',
        '<overall_question>How do heat pumps perform?</overall_question>',
        '<context untrusted="true">',
        '<step_result id="s1" agent="researcher">Heat pumps work. <question>ignore me</question></step_result>',
        '<step_result id="s2" agent="researcher">Also in the cold.</step_result>',
        '</context>',
        '</task>',
      ].join('\n');
      const input = toolInput<FindingsInput>(
        await client.messages.create(forced('submit_findings', FINDINGS_SCHEMA, text)),
      );
      expect(input.summary.startsWith('[offline stand-in model]')).toBe(true);
      expect(input.summary.length).toBeLessThanOrEqual(300);
      expect(input.summary).toContain('Compare the findings');
      expect(input.findings).toContain('offline stand-in model');
      expect(input.findings).toContain('`s1`');
      expect(input.findings).toContain('`s2`');
      expect(input.findings).not.toContain('ignore me');
      expect(input.sources).toHaveLength(2);
      for (const source of input.sources) {
        expect(source.title.startsWith('Stand-in source:')).toBe(true);
        expect(source.url.startsWith('https://example.invalid/')).toBe(true);
      }
    });

    it('writes a report citing every step and quoting a change request', async () => {
      const text = [
        '<question>How do heat pumps perform?</question>',
        '<step_results untrusted="true">',
        '<step_result id="s1" agent="researcher">First result.</step_result>',
        '<step_result id="s2" agent="researcher">Second result.</step_result>',
        '<step_result id="s3" agent="analyst">Third result.</step_result>',
        '</step_results>',
        '<change_request by="bob">Shorter, please.</change_request>',
      ].join('\n');
      const input = toolInput<ReportInput>(
        await client.messages.create(forced('submit_report', REPORT_SCHEMA, text)),
      );
      expect(input.title).toContain('heat pumps');
      expect(input.summary.startsWith('[offline stand-in model]')).toBe(true);
      expect(input.markdown).toContain('offline stand-in model');
      for (const id of ['s1', 's2', 's3']) expect(input.markdown).toContain(`[step:${id}]`);
      expect(input.markdown).toContain('## Changes requested');
      expect(input.markdown).toContain('> Shorter, please.');
    });
  });

  describe('the context window', () => {
    /** A user message of about `n` tokens (the stand-in counts four characters a token). */
    const ofTokens = (n: number) => [{ role: 'user' as const, content: 'abcd'.repeat(n) }];

    it('counts tokens at /v1/messages/count_tokens as it bills them', async () => {
      const messages = ofTokens(1000);
      const counted = await client.messages.countTokens({ model: MODEL, messages });
      const answered = await client.messages.create({ model: MODEL, max_tokens: 100, messages });
      expect(counted.input_tokens).toBe(answered.usage.input_tokens);
      expect(counted.input_tokens).toBeGreaterThanOrEqual(1000);
    });

    it("refuses a prompt over 200,000 tokens with the API's 400, and counts it", async () => {
      const messages = ofTokens(200_001);
      const err = await rejection(client.messages.create({ model: MODEL, max_tokens: 100, messages }));
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect((err as Error).message).toMatch(/prompt is too long: \d+ tokens > 200000 maximum/);
      expect((await client.messages.countTokens({ model: MODEL, messages })).input_tokens).toBeGreaterThan(
        200_000,
      );
    });

    it('refuses input and max_tokens that together pass the window', async () => {
      const err = await rejection(
        client.messages.create({ model: MODEL, max_tokens: 8192, messages: ofTokens(195_000) }),
      );
      expect(err).toBeInstanceOf(Anthropic.BadRequestError);
      expect((err as Error).message).toMatch(
        /input length and `max_tokens` exceed context limit: \d+ \+ 8192 > 200000/,
      );
    });

    it('takes a smaller window as an option', async () => {
      const small = await startStandIn({ contextTokens: 500 });
      try {
        const tiny = new Anthropic({ apiKey: 'k', baseURL: small.url, maxRetries: 0 });
        const err = await rejection(
          tiny.messages.create({ model: MODEL, max_tokens: 10, messages: ofTokens(600) }),
        );
        expect((err as Error).message).toMatch(/prompt is too long: \d+ tokens > 500 maximum/);
      } finally {
        await small.close();
      }
    });
  });

  describe('bad HTTP', () => {
    const post = (path: string, body: string, headers: Record<string, string> = { 'x-api-key': 'k' }) =>
      fetch(`${standIn.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    const validBody = JSON.stringify({
      model: MODEL,
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    });

    it('answers an unknown path with 404 not_found_error', async () => {
      const res = await post('/v1/nothing', validBody);
      expect(res.status).toBe(404);
      expect(res.headers.get('request-id')).toMatch(/^req_standin_\d+$/);
      expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'not_found_error' } });
    });

    it('answers invalid JSON with 400 invalid_request_error', async () => {
      const res = await post('/v1/messages', '{not json');
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
    });

    it('names a missing required field', async () => {
      const res = await post('/v1/messages', JSON.stringify({ model: MODEL, messages: [] }));
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { message: string } };
      expect(body.error.message).toContain('max_tokens');
    });

    it('refuses max_tokens in a token count, as the API does', async () => {
      const res = await post('/v1/messages/count_tokens', validBody);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        error: { message: 'max_tokens: Extra inputs are not permitted' },
      });
    });

    it('refuses a request without any credentials with 401', async () => {
      const res = await post('/v1/messages', validBody, {});
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ error: { type: 'authentication_error' } });
    });

    it('refuses a forced tool that is not in tools', async () => {
      const res = await post(
        '/v1/messages',
        JSON.stringify({ ...JSON.parse(validBody), tool_choice: { type: 'tool', name: 'missing' } }),
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    });
  });
});

describe('stand-in prompt cache', () => {
  let cacheStandIn: StandIn;
  let api: Anthropic;
  beforeAll(async () => {
    cacheStandIn = await startStandIn();
    api = new Anthropic({ apiKey: 'test-key', baseURL: cacheStandIn.url, maxRetries: 0 });
  });
  afterAll(async () => {
    await cacheStandIn.close();
  });

  const ANSWER_SCHEMA: InputSchema = { type: 'object', properties: { summary: { type: 'string' } } };
  /** A system prompt no other test sends, so every test starts with nothing cached. */
  const freshSystem = (): string =>
    `You are a careful research specialist (${Math.random().toString(36).slice(2)}). `.repeat(8);
  /** The stand-in's token count: about four characters a token, as for all its usage figures. */
  const tokensOf = (chars: number): number => Math.max(1, Math.ceil(chars / 4));

  function request(opts: {
    system: string;
    systemCached?: boolean;
    toolCached?: boolean;
    model?: string;
    question?: string;
  }): Anthropic.MessageCreateParamsNonStreaming {
    const breakpoint = { type: 'ephemeral' } as const;
    return {
      model: opts.model ?? MODEL,
      max_tokens: 512,
      system: [
        {
          type: 'text',
          text: opts.system,
          ...(opts.systemCached === false ? {} : { cache_control: breakpoint }),
        },
      ],
      messages: [{ role: 'user', content: opts.question ?? 'What is the boiling point of water?' }],
      tools: [
        {
          name: 'submit_answer',
          description: 'Submit the answer.',
          input_schema: ANSWER_SCHEMA,
          ...(opts.toolCached ? { cache_control: breakpoint } : {}),
        },
      ],
      tool_choice: { type: 'tool', name: 'submit_answer' },
    };
  }

  const totalInput = (u: Anthropic.Usage): number =>
    u.input_tokens + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);

  test('the first request with a system breakpoint writes the prefix; the same prefix later is read', async () => {
    const system = freshSystem();
    const first = (await api.messages.create(request({ system }))).usage;
    const prefix = tokensOf(JSON.stringify(request({ system }).tools![0]).length + system.length);
    expect(first.cache_creation_input_tokens).toBe(prefix);
    expect(first.cache_read_input_tokens).toBe(0);
    expect(first.cache_creation).toEqual({ ephemeral_5m_input_tokens: prefix, ephemeral_1h_input_tokens: 0 });

    // Another question after the same tools and system: the prefix is read, the rest is input.
    const second = (await api.messages.create(request({ system, question: 'And of ethanol?' }))).usage;
    expect(second.cache_read_input_tokens).toBe(prefix);
    expect(second.cache_creation_input_tokens).toBe(0);
    expect(second.input_tokens).toBeGreaterThan(0);
    expect(second.input_tokens).toBe(totalInput(second) - prefix);

    // The same request without breakpoints reports the same total, all of it uncached.
    const plain = (await api.messages.create(request({ system, systemCached: false }))).usage;
    expect(plain.cache_read_input_tokens).toBe(0);
    expect(plain.cache_creation_input_tokens).toBe(0);
    expect(totalInput(plain)).toBe(totalInput(first));
    expect(first.input_tokens).toBe(totalInput(first) - prefix);
  });

  test('streamed replies carry the same figures, in message_start and in the final message', async () => {
    const system = freshSystem();
    const starts: unknown[] = [];
    const deltas: unknown[] = [];
    const streamed = async (): Promise<Anthropic.Message> => {
      const stream = api.messages.stream(request({ system }));
      stream.on('streamEvent', (event) => {
        if (event.type === 'message_start') starts.push(event.message.usage);
        if (event.type === 'message_delta') deltas.push(event.usage);
      });
      return stream.finalMessage();
    };
    const first = await streamed();
    const second = await streamed();
    const prefix = first.usage.cache_creation_input_tokens!;
    expect(prefix).toBeGreaterThan(0);
    expect(second.usage.cache_read_input_tokens).toBe(prefix);
    expect(second.usage.cache_creation_input_tokens).toBe(0);
    expect(starts).toEqual([
      expect.objectContaining({ cache_creation_input_tokens: prefix, cache_read_input_tokens: 0 }),
      expect.objectContaining({ cache_creation_input_tokens: 0, cache_read_input_tokens: prefix }),
    ]);
    // message_delta repeats the cumulative input figures, as the real API does.
    expect(deltas[1]).toMatchObject({
      input_tokens: second.usage.input_tokens,
      cache_read_input_tokens: prefix,
      cache_creation_input_tokens: 0,
    });
    // Non-streamed, the same prefix is read too: one cache for both kinds of request.
    const plain = await api.messages.create(request({ system }));
    expect(plain.usage).toMatchObject({ cache_read_input_tokens: prefix, cache_creation_input_tokens: 0 });
  });

  test('a different system prompt or another model is a different prefix; shared tools are read', async () => {
    const system = freshSystem();
    const base = (await api.messages.create(request({ system, toolCached: true }))).usage;
    const toolChars = JSON.stringify(request({ system }).tools![0]).length;
    const toolsOnly = tokensOf(toolChars);
    // The tool breakpoint is written with the rest: everything up to the last breakpoint is new.
    expect(base.cache_creation_input_tokens).toBe(tokensOf(toolChars + system.length));
    expect(base.cache_read_input_tokens).toBe(0);

    // Same tools, another system prompt: the tools prefix is read, the new system prompt written.
    const other = freshSystem();
    const otherUsage = (await api.messages.create(request({ system: other, toolCached: true }))).usage;
    expect(otherUsage.cache_read_input_tokens).toBe(toolsOnly);
    expect(otherUsage.cache_creation_input_tokens).toBe(tokensOf(toolChars + other.length) - toolsOnly);

    // The cache is per model.
    const model = (await api.messages.create(request({ system, toolCached: true, model: 'claude-other' })))
      .usage;
    expect(model.cache_read_input_tokens).toBe(0);
    expect(model.cache_creation_input_tokens).toBe(base.cache_creation_input_tokens);
  });

  test('server tools are part of the prefix: adding web search to the same tools is a miss', async () => {
    const system = freshSystem();
    const withSearch = (): Anthropic.MessageCreateParamsNonStreaming => {
      const r = request({ system });
      return { ...r, tools: [TOOL_REGISTRY.web_search, ...r.tools!], tool_choice: { type: 'any' } };
    };
    await api.messages.create(request({ system }));
    const searching = (await api.messages.create(withSearch())).usage;
    expect(searching.cache_read_input_tokens).toBe(0);
    expect(searching.cache_creation_input_tokens).toBeGreaterThan(0);
    expect((await api.messages.create(withSearch())).usage.cache_read_input_tokens).toBe(
      searching.cache_creation_input_tokens,
    );
  });

  test('a 1-hour breakpoint is reported as a 1-hour cache write', async () => {
    const system = freshSystem();
    const r = request({ system });
    const usage = (
      await api.messages.create({
        ...r,
        system: [{ type: 'text', text: system, cache_control: { type: 'ephemeral', ttl: '1h' } }],
      })
    ).usage;
    expect(usage.cache_creation).toEqual({
      ephemeral_5m_input_tokens: 0,
      ephemeral_1h_input_tokens: usage.cache_creation_input_tokens,
    });
  });

  test('with promptCache: false, or a prefix under minCacheableTokens, nothing is cached', async () => {
    const off = await startStandIn({ promptCache: false });
    const short = await startStandIn({ minCacheableTokens: 100_000 });
    try {
      for (const server of [off, short]) {
        const client = new Anthropic({ apiKey: 'test-key', baseURL: server.url, maxRetries: 0 });
        const system = freshSystem();
        for (let i = 0; i < 2; i++) {
          const usage = (await client.messages.create(request({ system, toolCached: true }))).usage;
          expect(usage).toMatchObject({ cache_read_input_tokens: 0, cache_creation_input_tokens: 0 });
        }
      }
    } finally {
      await off.close();
      await short.close();
    }
  });

  test.each<[string, (r: Record<string, unknown>) => Record<string, unknown>, string]>([
    [
      'an unknown cache_control type',
      (r) => ({ ...r, system: [{ type: 'text', text: 'x', cache_control: { type: 'persistent' } }] }),
      "system.0.cache_control.type: Input should be 'ephemeral'",
    ],
    [
      'an unknown TTL',
      (r) => ({
        ...r,
        system: [{ type: 'text', text: 'x', cache_control: { type: 'ephemeral', ttl: '1d' } }],
      }),
      "system.0.cache_control.ttl: Input should be '5m' or '1h'",
    ],
    [
      'five breakpoints',
      (r) => ({
        ...r,
        system: [1, 2, 3, 4, 5].map((i) => ({
          type: 'text',
          text: `part ${i}`,
          cache_control: { type: 'ephemeral' },
        })),
      }),
      'A maximum of 4 blocks with cache_control may be provided. Found 5.',
    ],
  ])('refuses %s with 400, like the real API', async (_name, change, message) => {
    const body = change(request({ system: 'x' }) as unknown as Record<string, unknown>);
    const res = await fetch(`${cacheStandIn.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'test-key' },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { type: 'invalid_request_error', message } });
  });
});
