/**
 * Traces and logs of real tasks: the real activities and the real Anthropic SDK against the
 * loopback stand-in, on the real dev server, with spans kept in memory and the worker's log lines
 * captured.
 *
 * The shared test bundle (global-setup.ts, built as `npm run build:workflows` builds a deploy's) has
 * the tracing interceptors; this file also bundles the workflow code without them, as a worker with
 * tracing off bundles it at start, to replay histories both ways.
 */
import { SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { TRACE_HEADER as PACKAGE_TRACE_HEADER } from '@temporalio/interceptors-opentelemetry/lib/instrumentation';
import { Client, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import path from 'node:path';
import { startStandIn, type StandIn, type StandInReply, type StandInRequest } from '../standin/server';
import { createLogger, logFormatFromEnv, runtimeLogging, secretsFromEnv } from '../workers/logging';
import { startTracing, telemetryOptionsFromEnv, workerTracing, type Telemetry } from '../workers/telemetry';
import { JsonLinesSpanExporter } from '../workers/span-export';
import { createBatonWorker } from '../workers/worker';
import { researchTask } from '../workflows';
import { TRACE_HEADER } from '../workflows/tracing';
import { approve, decide, status as statusQuery, type TokenUsage } from '../contract/messages';
import { pollUntil, tempActivityOptions, uniqueId, useTestServer, waitForStatus } from './helpers';
import { recordedHistories } from './recorded-histories';

const API_KEY = 'sk-test-telemetry-secret-0123456789';
const QUESTION = 'How do solid-state batteries compare with lithium-ion for EVs?';

// The Runtime's logger is installed once per process, before anything uses the Runtime (useTestServer
// connects in beforeAll): this file's captures every line, at DEBUG, as `npm run worker` writes it.
const logLines: string[] = [];
Runtime.install(
  runtimeLogging(
    createLogger({
      level: 'DEBUG',
      format: 'json',
      destination: { write: (line) => logLines.push(line) },
      secrets: [API_KEY],
    }),
  ),
);

const ctx = useTestServer();
let standIn: StandIn;
/** Overrides the stand-in's answer to a request while set (reset before each test). */
let respond: ((req: StandInRequest) => StandInReply | undefined) | undefined;
let memory: InMemorySpanExporter;
let telemetry: Telemetry;
/** The test run's bundle (test/global-setup.ts: the prebuilt bundle, tracing interceptors included). */
const tracedBundle = { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! };
/** `workflows/` bundled without them, as a worker with tracing off bundles it at start. */
let withoutTracing: string;

beforeAll(async () => {
  standIn = await startStandIn({ respond: (req) => respond?.(req) });
  memory = new InMemorySpanExporter();
  telemetry = startTracing({ serviceName: 'baton-test', exporter: memory });
  ({ code: withoutTracing } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    logger: new DefaultLogger('WARN'),
  }));
}, 180_000);

afterAll(async () => {
  await telemetry?.shutdown();
  await standIn?.close();
});

beforeEach(() => {
  respond = undefined;
  standIn.resetStats();
  memory.reset();
});

/**
 * Runs `fn` with a traced worker (createBatonWorker, real activities, the stand-in) on a fresh task
 * queue and a client that propagates trace context; every span has ended when this returns.
 */
async function traced<T>(fn: (client: Client, taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueId('telemetry-queue');
  const worker = await createBatonWorker({
    connection: ctx.nativeConnection,
    namespace: 'default',
    taskQueue,
    activityOptions: {
      ...(await tempActivityOptions(path.join(__dirname, '..', 'config'))),
      apiKey: API_KEY,
      baseURL: standIn.url,
    },
    workflowBundle: tracedBundle,
    telemetry,
  });
  const client = new Client({
    connection: ctx.client.connection,
    interceptors: telemetry.clientInterceptors,
  });
  const result = await worker.runUntil(fn(client, taskQueue));
  await telemetry.forceFlush();
  return result;
}

/** Runs a fact-sheet task (a fixed plan of three steps, then the report gate) to completion. */
async function factSheet(client: Client, taskQueue: string): Promise<WorkflowHandle<typeof researchTask>> {
  const handle = await client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId('traced'),
    args: [{ question: QUESTION, playbook: 'fact-sheet' }],
  });
  await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 60_000);
  await handle.signal(approve, { by: 'editor' });
  expect((await handle.result()).outcome).toBe('completed');
  return handle;
}

const traceOf = (s: ReadableSpan): string => s.spanContext().traceId;
const modelCalls = (spans: ReadableSpan[]): ReadableSpan[] =>
  spans.filter((s) => s.name.startsWith('model.call '));
const calledTimes = (): number => Object.values(standIn.stats().byTool).reduce((a, b) => a + b, 0);

/** The usage the model.call spans of `spans` add up to, in the task status's terms. */
function usageOf(spans: ReadableSpan[]): Required<Omit<TokenUsage, 'costUsd'>> & { costUsd: number } {
  const sum = (attribute: string): number =>
    spans.reduce((n, s) => n + Number(s.attributes[attribute] ?? 0), 0);
  return {
    inputTokens: sum('baton.usage.input_tokens'),
    outputTokens: sum('baton.usage.output_tokens'),
    cacheReadInputTokens: sum('baton.usage.cache_read_input_tokens'),
    cacheCreationInputTokens: sum('baton.usage.cache_creation_input_tokens'),
    costUsd: sum('baton.usage.cost_usd'),
  };
}

function expectSameUsage(spans: ReadableSpan[], recorded: TokenUsage): void {
  const fromSpans = usageOf(spans);
  expect({ ...fromSpans, costUsd: undefined }).toEqual({
    inputTokens: recorded.inputTokens,
    outputTokens: recorded.outputTokens,
    cacheReadInputTokens: recorded.cacheReadInputTokens ?? 0,
    cacheCreationInputTokens: recorded.cacheCreationInputTokens ?? 0,
    costUsd: undefined,
  });
  if (typeof recorded.costUsd === 'number') expect(fromSpans.costUsd).toBeCloseTo(recorded.costUsd, 9);
}

test('a task is one trace: the client start, parent and child workflows, activities and a span per model call', async () => {
  const { handle, final } = await traced(async (client, taskQueue) => {
    const handle = await client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('traced'),
      args: [{ question: QUESTION }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    // One gate by Update, one by signal: both are traced, and the history below has both.
    await handle.executeUpdate(decide, {
      args: [{ decision: 'approve', by: 'reviewer@example.com', gate: 'plan' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 60_000);
    await handle.signal(approve, { by: 'editor@example.com' });
    expect((await handle.result()).outcome).toBe('completed');
    return { handle, final: await handle.query(statusQuery) };
  });
  const spans = memory.getFinishedSpans();
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  const parentOf = (s: ReadableSpan): ReadableSpan | undefined => byId.get(s.parentSpanId ?? '');

  // The client's start span is the root; the workflow's run continues it.
  const start = spans.find((s) => s.name === 'StartWorkflow:researchTask')!;
  expect(start.attributes).toMatchObject({ temporalWorkflowId: handle.workflowId });
  expect(start.parentSpanId).toBeUndefined();
  expect(start.resource.attributes['service.name']).toBe('baton-test');
  const run = spans.find((s) => s.name === 'RunWorkflow:researchTask')!;
  expect(parentOf(run)).toBe(start);
  expect(run.attributes).toMatchObject({
    temporalWorkflowId: handle.workflowId,
    temporalWorkflowType: 'researchTask',
  });
  // Each hop is a parent of the next: workflow -> activity start -> activity run; parent -> child.
  const planRun = spans.find((s) => s.name === 'RunActivity:planTask')!;
  expect(parentOf(planRun)?.name).toBe('StartActivity:planTask');
  expect(parentOf(parentOf(planRun)!)).toBe(run);
  const childRun = spans.find((s) => s.name === 'RunWorkflow:researchSubtask')!;
  expect(parentOf(childRun)?.name).toBe('StartChildWorkflow:researchSubtask');
  expect(parentOf(parentOf(childRun)!)).toBe(run);
  // Decisions are traced from the client that sent them into the workflow's handler.
  expect(parentOf(spans.find((s) => s.name === 'HandleUpdate:decide')!)?.name).toBe(
    'StartWorkflowUpdate:decide',
  );
  expect(parentOf(spans.find((s) => s.name === 'HandleSignal:approve')!)?.name).toBe(
    'SignalWorkflow:approve',
  );

  const trace = traceOf(start);
  const inTrace = new Set(spans.filter((s) => traceOf(s) === trace).map((s) => s.name));
  for (const name of [
    'StartActivity:planTask',
    'RunActivity:planTask',
    'RunActivity:runSpecialist',
    'StartChildWorkflow:researchSubtask',
    'RunWorkflow:researchSubtask',
    'RunActivity:synthesizeReport',
  ]) {
    expect([name, inTrace.has(name)]).toEqual([name, true]);
  }
  // Nothing of the task's work started a trace of its own (signals and queries are other calls).
  const work = spans.filter((s) =>
    /^(RunWorkflow|StartActivity|RunActivity|StartChildWorkflow):|^model\.call /.test(s.name),
  );
  expect(work.filter((s) => traceOf(s) !== trace).map((s) => s.name)).toEqual([]);
  // Query spans are left out (npm start polls status twice a second).
  expect(spans.filter((s) => /Query/.test(s.name))).toEqual([]);

  // One model.call span per request the model received, each inside the activity that made it.
  const calls = modelCalls(spans);
  expect(calls).toHaveLength(calledTimes());
  for (const call of calls) {
    expect(parentOf(call)?.name).toMatch(/^RunActivity:(planTask|runSpecialist|synthesizeReport)$/);
    expect(call.name).toBe(`model.call ${String(call.attributes['baton.agent'])}`);
    expect(call.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(call.attributes).toMatchObject({
      'gen_ai.request.model': expect.any(String),
      'gen_ai.response.model': expect.any(String),
      'baton.answer': expect.any(String),
      'baton.answer.valid': true,
      'baton.stop_reason': expect.any(String),
      'baton.usage.input_tokens': expect.any(Number),
      'baton.usage.output_tokens': expect.any(Number),
    });
  }
  expect(new Set(calls.map((c) => c.attributes['baton.answer']))).toEqual(
    new Set(['submit_plan', 'submit_findings', 'submit_report']),
  );
  // The Anthropic SDK's own span of each request sits inside Baton's.
  const sdkSpans = spans.filter((s) => s.name === 'anthropic.messages.create');
  expect(sdkSpans).toHaveLength(calls.length);
  for (const s of sdkSpans) expect(parentOf(s)?.name).toMatch(/^model\.call /);

  // The spans' token counts add up to exactly what the task recorded: in total (child included)...
  expectSameUsage(calls, final.usage);
  // ...and per agent.
  const agents = Object.keys(final.usage.byAgent).sort();
  expect([...new Set(calls.map((c) => String(c.attributes['baton.agent'])))].sort()).toEqual(agents);
  for (const agent of agents) {
    expectSameUsage(
      calls.filter((c) => c.attributes['baton.agent'] === agent),
      final.usage.byAgent[agent]!,
    );
  }

  // Turning tracing off again is safe too: this traced history (an Update included) replays
  // without the interceptors, as with them.
  const history = await handle.fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: { code: withoutTracing } }, history, handle.workflowId);
  await Worker.runReplayHistory(
    { workflowBundle: tracedBundle, ...workerTracing(telemetry, true) },
    history,
    handle.workflowId,
  );
});

test('a failed model call is an error span with its error type, inside a failed activity attempt', async () => {
  standIn.inject({ status: 429, retryAfterSeconds: 1, tool: 'submit_findings' });
  await traced(factSheet);
  const spans = memory.getFinishedSpans();
  const calls = modelCalls(spans);
  expect(calls).toHaveLength(calledTimes()); // three steps, the report, and the retried call
  expect(standIn.stats().errors).toBe(1);
  const failed = calls.filter((s) => s.status.code === SpanStatusCode.ERROR);
  expect(failed).toHaveLength(1);
  expect(failed[0]!.attributes).toMatchObject({
    'baton.agent': 'researcher',
    'error.type': 'ModelUnavailable',
  });
  expect(failed[0]!.status.message).toContain('model API answered 429');
  expect(failed[0]!.attributes['baton.usage.input_tokens']).toBeUndefined();
  const attempt = spans.find((s) => s.spanContext().spanId === failed[0]!.parentSpanId)!;
  expect(attempt.name).toBe('RunActivity:runSpecialist');
  expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
  // The retry is another attempt, another activity span, in the same trace.
  const retried = calls.filter((s) => s.status.code !== SpanStatusCode.ERROR);
  expect(retried.every((s) => traceOf(s) === traceOf(failed[0]!))).toBe(true);
});

/** Log entries written since `from`, parsed (each line must be one JSON object). */
function entries(from: number): Record<string, unknown>[] {
  return logLines.slice(from).map((line) => {
    expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
    return JSON.parse(line) as Record<string, unknown>;
  });
}

test("worker logs are JSON lines with the workflow's and activity's fields, and never the API key", async () => {
  // The first specialist answers next to a call of a tool nobody offered: model.ts logs the refusal.
  let replied = false;
  respond = (req) => {
    if (replied || req.toolName !== 'submit_findings') return undefined;
    replied = true;
    const findings = { summary: 'A summary.', findings: 'Some findings.', sources: [] };
    return {
      kind: 'blocks',
      blocks: [
        { type: 'tool_use', name: 'run_shell', input: { cmd: 'ls' } },
        { type: 'text', text: JSON.stringify(findings) },
      ],
    };
  };
  const from = logLines.length;
  const handle = await traced(factSheet);
  const { runId } = await handle.describe();
  const trace = traceOf(memory.getFinishedSpans().find((s) => s.name === 'StartWorkflow:researchTask')!);
  // The Runtime holds lines back ~100 ms to order them: wait for the last activity's.
  const mine = await pollUntil(
    () => Promise.resolve(entries(from).filter((e) => e.workflowId === handle.workflowId)),
    (es) => es.some((e) => e.activityType === 'publishReport'),
    'the activity log lines',
  );
  for (const e of entries(from)) {
    expect(e).toMatchObject({ level: expect.any(String), message: expect.any(String) });
    expect(new Date(String(e.time)).toISOString()).toBe(e.time);
  }
  // A workflow `log` call: through the SDK's sink, with the workflow's fields and its trace.
  expect(mine.find((e) => e.sdkComponent === 'workflow' && e.message === 'phase')).toMatchObject({
    level: 'info',
    phase: expect.any(String),
    workflowId: handle.workflowId,
    runId,
    workflowType: 'researchTask',
    taskQueue: expect.stringMatching(/^telemetry-queue-/),
    namespace: 'default',
    trace_id: trace,
  });
  // An activity's lines: the activity's fields too, the run as `runId`, and no task token.
  // Lines about an activity (the SDK's `Activity started`/`completed`, and the activity's own `log`
  // calls): the activity's fields too, the run as `runId`, and no task token.
  const activity = mine.filter((e) => e.activityType === 'runSpecialist');
  expect(activity.map((e) => e.message)).toEqual(
    expect.arrayContaining(['Activity started', 'Activity completed', 'refused a tool call the model made']),
  );
  for (const e of activity) {
    expect(e).toMatchObject({
      workflowId: handle.workflowId,
      runId,
      workflowType: 'researchTask',
      activityId: expect.any(String),
      attempt: expect.any(Number),
      taskQueue: expect.stringMatching(/^telemetry-queue-/),
    });
    expect(e).not.toHaveProperty('taskToken');
    expect(e).not.toHaveProperty('workflowRunId');
  }
  // The activity's own log call: its component, its fields, and the trace it ran in.
  expect(activity.find((e) => e.message === 'refused a tool call the model made')).toMatchObject({
    level: 'warn',
    sdkComponent: 'activity',
    agent: 'researcher',
    tool: 'run_shell',
    trace_id: trace,
  });
  expect(
    modelCalls(memory.getFinishedSpans()).filter((s) => s.attributes['baton.refused_tool_calls'] === 1),
  ).toHaveLength(1);

  // The key never appears, even when something logs it outright.
  const before = logLines.length;
  Runtime.instance().logger.warn(`calling the model with key ${API_KEY}`, {
    apiKey: API_KEY,
    request: { headers: { 'x-api-key': API_KEY } },
    note: `key=${API_KEY}`,
  });
  const leaked = await pollUntil(
    () => Promise.resolve(entries(before).find((e) => String(e.message).startsWith('calling the model'))),
    (e) => e !== undefined,
    'the line that logs the key',
  );
  expect(leaked).toMatchObject({
    message: 'calling the model with key [redacted]',
    apiKey: '[redacted]',
    request: { headers: { 'x-api-key': '[redacted]' } },
    note: 'key=[redacted]',
  });
  expect(logLines.join('')).not.toContain(API_KEY);
});

/** Replays `histories` with `options`; the failures, as `<workflow id>: <message>`. */
async function replayFailures(
  options: Parameters<typeof Worker.runReplayHistories>[0],
  histories: { workflowId: string; history: unknown }[],
): Promise<string[]> {
  const failures: string[] = [];
  for await (const result of Worker.runReplayHistories(options, histories)) {
    if (result.error) failures.push(`${result.workflowId}: ${result.error.message}`);
  }
  return failures;
}

test('recorded histories replay with the tracing interceptors bundled: turning tracing on is safe for running tasks', async () => {
  const histories = await recordedHistories();
  expect(histories.length).toBeGreaterThan(0);
  expect(
    await replayFailures({ workflowBundle: tracedBundle, ...workerTracing(telemetry, true) }, histories),
  ).toEqual([]);
  // ...and without them, as a worker that bundles workflows/ at start with tracing off runs them
  // (test/replay.test.ts replays them with the prebuilt bundle).
  expect(await replayFailures({ workflowBundle: { code: withoutTracing } }, histories)).toEqual([]);
  // Baton's interceptors send the trace context where the package's activity interceptor reads it.
  expect(TRACE_HEADER).toBe(PACKAGE_TRACE_HEADER);
  // Two replays of every committed history (v12 added two batches of 100 steps): over a minute on
  // two busy cores, and the histories only grow.
}, 240_000);

test("why Baton has its own workflow interceptors: the package's break the replay of tasks that had Updates", async () => {
  const { code: packageBundle } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    workflowInterceptorModules: [
      require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors'),
    ],
    logger: new DefaultLogger('WARN'),
  });
  const failures = await replayFailures(
    {
      workflowBundle: { code: packageBundle },
      sinks: { exporter: { export: { fn: () => undefined } } },
    },
    await recordedHistories(),
  );
  expect(failures).toContainEqual(expect.stringMatching(/gated-approved: .*[Nn]ondeterminism/));
}, 120_000);

describe('options', () => {
  test('traces go to OTLP when an endpoint is set, else to the program default; off turns them off', () => {
    expect(telemetryOptionsFromEnv('console', {})).toMatchObject({
      traces: 'console',
      serviceName: 'baton-worker',
    });
    expect(telemetryOptionsFromEnv('file', {}).file).toMatch(/\.baton\/traces\.jsonl$/);
    expect(
      telemetryOptionsFromEnv('file', {
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/',
        OTEL_SERVICE_NAME: 'w1',
      }),
    ).toMatchObject({ traces: 'otlp', otlpUrl: 'http://collector:4318/v1/traces', serviceName: 'w1' });
    expect(
      telemetryOptionsFromEnv('console', { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://x.example/traces' }),
    ).toMatchObject({ traces: 'otlp', otlpUrl: 'https://x.example/traces' });
    expect(
      telemetryOptionsFromEnv('console', {
        BATON_TRACES: 'off',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      }).traces,
    ).toBe('off');
    expect(telemetryOptionsFromEnv('console', { OTEL_SDK_DISABLED: 'true' }).traces).toBe('off');
    expect(telemetryOptionsFromEnv('file', { BATON_TRACES: 'console' }).traces).toBe('console');
    expect(() => telemetryOptionsFromEnv('console', { BATON_TRACES: 'jaeger' })).toThrow(
      /BATON_TRACES must be one of/,
    );
    expect(() =>
      telemetryOptionsFromEnv('console', { BATON_TRACES: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }),
    ).toThrow(/http\/protobuf/);
  });

  test('log format and secrets come from the environment', () => {
    expect(logFormatFromEnv('json', {})).toBe('json');
    expect(logFormatFromEnv('json', { BATON_LOG_FORMAT: 'PRETTY' })).toBe('pretty');
    expect(() => logFormatFromEnv('json', { BATON_LOG_FORMAT: 'xml' })).toThrow(/json or pretty/);
    expect(
      secretsFromEnv({
        ANTHROPIC_API_KEY: 'sk-ant-0123456789',
        TEMPORAL_API_KEY: 'tmprl-0123456789',
        BATON_ENCRYPTION_KEY: 'base64key0123456789',
        BATON_ENCRYPTION_KEY_ID: 'k1-id-not-secret',
        BATON_CODEC_TOKEN: 'codec-token-0123',
        OTEL_EXPORTER_OTLP_HEADERS: 'authorization=Bearer%20abcdefgh0123',
        ANTHROPIC_BASE_URL: 'http://127.0.0.1:1234',
      }).sort(),
    ).toEqual(
      [
        'sk-ant-0123456789',
        'tmprl-0123456789',
        'base64key0123456789',
        'codec-token-0123',
        'Bearer%20abcdefgh0123',
        'Bearer abcdefgh0123',
      ].sort(),
    );
  });

  test('pretty lines are for people; JSON span lines are one compact object each', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      level: 'INFO',
      format: 'pretty',
      destination: { write: (l) => lines.push(l) },
    });
    logger.debug('dropped');
    logger.warn('decision refused', { workflowId: 'w1' });
    expect(lines).toEqual([
      expect.stringMatching(/^\S+Z \[WARN\] decision refused \{"workflowId":"w1"\}\n$/),
    ]);

    trace.getTracer('test').startActiveSpan('outer', (outer) => {
      const inner = trace
        .getTracer('test')
        .startSpan('model.call lead', { attributes: { 'baton.agent': 'lead' } });
      inner.recordException(new Error('overloaded'));
      inner.setStatus({ code: SpanStatusCode.ERROR, message: 'overloaded' });
      inner.end();
      outer.end();
    });
    const [inner, outer] = memory.getFinishedSpans();
    const out: string[] = [];
    const exporter = new JsonLinesSpanExporter({ write: (t) => out.push(t) });
    await new Promise<void>((resolve) => exporter.export([inner!, outer!], () => resolve()));
    expect(out.join('').split('\n')).toHaveLength(3); // two lines and the final newline
    const [record] = out
      .join('')
      .split('\n')
      .map((l) => JSON.parse(l || '{}') as Record<string, unknown>);
    expect(record).toEqual({
      type: 'span',
      time: expect.stringMatching(/Z$/),
      service: 'baton-test',
      name: 'model.call lead',
      kind: 'internal',
      traceId: traceOf(outer!),
      spanId: inner!.spanContext().spanId,
      parentSpanId: outer!.spanContext().spanId,
      start: expect.stringMatching(/Z$/),
      durationMs: expect.any(Number),
      status: 'error',
      statusMessage: 'overloaded',
      attributes: { 'baton.agent': 'lead' },
      events: [
        {
          name: 'exception',
          time: expect.stringMatching(/Z$/),
          attributes: { 'exception.type': 'Error', 'exception.message': 'overloaded' },
        },
      ],
    });
  });
});
