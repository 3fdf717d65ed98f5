/**
 * Tracing: OpenTelemetry spans for every research task, through Temporal's own interceptors
 * (`@temporalio/interceptors-opentelemetry`), exported to the console, a file or an OTLP collector.
 *
 * Design note:
 *   1. One trace per task. The client that starts a task opens `StartWorkflow:researchTask`
 *      (`@temporalio/interceptors-opentelemetry`'s client interceptor) and sends its context in
 *      the start request's headers. Baton's workflow interceptors (workflows/tracing.ts, bundled
 *      into the workflow code) continue it: `RunWorkflow:*`, then `StartActivity:*` and
 *      `StartChildWorkflow:*` for what the workflow schedules, so child tasks join the same trace.
 *      The package's activity interceptor continues with `RunActivity:*`; `callStructured` opens
 *      `model.call <agent>` inside that, and the Anthropic SDK its own `anthropic.messages.create`
 *      span below it (metadata only, never prompt text: see the SDK's
 *      `ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE`).
 *   2. Workflow spans are made in the workflow sandbox by interceptors that are timing-neutral, so
 *      turning tracing on or off never breaks the replay of a running task (the package's own
 *      workflow interceptors do break it: see workflows/tracing.ts). They leave through a sink
 *      (`batonTracing`) to this process's span processor; the SDK does not call sinks while it
 *      replays history, so a task that moves to another worker does not export its spans twice.
 *   3. The tracer provider, an AsyncLocalStorage context manager and the W3C propagator are
 *      registered globally: the interceptors, `callStructured` and the Anthropic SDK all use the
 *      global API. With tracing off nothing is registered, and every one of them is a no-op.
 *   4. Query spans (`QueryWorkflow:*`, `HandleQuery:*`) are dropped: `npm start`, the inbox and
 *      `watch` poll `status` every half second, and a trace per poll would bury the tasks' own.
 *   5. Workflow spans need the interceptors *in the workflow bundle*. A worker that bundles
 *      `workflows/` itself gets them from {@link workerTracing}; a prebuilt bundle must have been
 *      built with `workflowInterceptorModules: TRACING_WORKFLOW_MODULES`. Either way the worker
 *      always registers the `batonTracing` sink (a no-op without tracing), so a bundle built with
 *      the interceptors also runs, silently, on a worker without tracing.
 */
import {
  context,
  diag,
  DiagLogLevel,
  propagation,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  CompositePropagator,
  hrTimeDuration,
  millisToHrTime,
  W3CBaggagePropagator,
  W3CTraceContextPropagator,
} from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { envDetectorSync, Resource } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  SimpleSpanProcessor,
  type ReadableSpan,
  type Span,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import type { WorkflowInfo } from '@temporalio/workflow';
import { createWriteStream, mkdirSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../activities/options';
import { JsonLinesSpanExporter } from './span-export';
import type { BatonTracingSinks, WorkflowSpan } from '../workflows/tracing';

/** The workflow interceptor modules to bundle for workflow spans (`bundleWorkflowCode`'s `workflowInterceptorModules`). */
export const TRACING_WORKFLOW_MODULES: readonly string[] = [require.resolve('../workflows/tracing')];

export const DEFAULT_SERVICE_NAME = 'baton-worker';
export const DEFAULT_TRACES_FILE = path.join(PROJECT_ROOT, '.baton', 'traces.jsonl');

/** Where spans go. */
export type TraceDestination = 'off' | 'console' | 'file' | 'otlp';

export interface TelemetryOptions {
  /**
   * Where spans go. Env `BATON_TRACES`: `off`, `console` (one JSON object per span and line on
   * stdout), `file` (the same lines appended to {@link file}), `otlp`, or `auto` (the default):
   * `otlp` when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, the
   * program's own default otherwise (`console` for `npm run worker`, `file` for `npm start`).
   * `OTEL_SDK_DISABLED=true` also means `off`.
   */
  traces: TraceDestination;
  /** `service.name` of every span. Env `OTEL_SERVICE_NAME`; default `baton-worker`. */
  serviceName: string;
  /** For `file`. Env `BATON_TRACES_FILE`; default `.baton/traces.jsonl` in the project. */
  file: string;
  /**
   * For `otlp`: the OTLP/HTTP (protobuf) traces URL. Env `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used
   * as is), or `OTEL_EXPORTER_OTLP_ENDPOINT` with `/v1/traces` appended; default
   * `http://localhost:4318/v1/traces`. Headers (`OTEL_EXPORTER_OTLP_HEADERS`), timeout and
   * compression come from the standard variables too.
   */
  otlpUrl: string;
}

const DESTINATIONS = ['auto', 'off', 'console', 'file', 'otlp'] as const;

/**
 * Reads {@link TelemetryOptions} from `env`. `fallback` is where spans go when nothing says
 * otherwise. Throws on a value it does not know, and on an OTLP protocol other than http/protobuf.
 */
export function telemetryOptionsFromEnv(
  fallback: Exclude<TraceDestination, 'otlp'>,
  env: NodeJS.ProcessEnv = process.env,
): TelemetryOptions {
  const raw = (env.BATON_TRACES || 'auto').toLowerCase();
  if (!(DESTINATIONS as readonly string[]).includes(raw)) {
    throw new Error(`BATON_TRACES must be one of ${DESTINATIONS.join(', ')} (got "${env.BATON_TRACES}")`);
  }
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || undefined;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
  let traces: TraceDestination =
    raw === 'auto' ? (endpoint || base ? 'otlp' : fallback) : (raw as TraceDestination);
  if (env.OTEL_SDK_DISABLED?.toLowerCase() === 'true') traces = 'off';
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL;
  if (traces === 'otlp' && protocol && protocol !== 'http/protobuf') {
    throw new Error(
      `Baton sends traces over OTLP/HTTP with protobuf: OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf or unset (got "${protocol}")`,
    );
  }
  return {
    traces,
    serviceName: env.OTEL_SERVICE_NAME || DEFAULT_SERVICE_NAME,
    file: env.BATON_TRACES_FILE ? path.resolve(env.BATON_TRACES_FILE) : DEFAULT_TRACES_FILE,
    otlpUrl: endpoint ?? `${(base ?? 'http://localhost:4318').replace(/\/+$/, '')}/v1/traces`,
  };
}

/** Tracing, set up and registered globally; see the design note above. */
export interface Telemetry {
  readonly serviceName: string;
  /** Where spans go, for one line of output, e.g. `appended to /…/.baton/traces.jsonl`. */
  readonly where: string;
  readonly resource: Resource;
  /** Every span ends here: the SDK's own, and the workflow spans the sink brings out of the sandbox. */
  readonly spanProcessor: SpanProcessor;
  /** For `new Client({ interceptors })`: start, signal, query and update calls carry the trace context. */
  readonly clientInterceptors: { workflow: WorkflowClientInterceptor[] };
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Flushes, closes the exporter and unregisters the globals. Safe to call more than once. */
  shutdown(): Promise<void>;
}

export interface TracingSetup {
  serviceName: string;
  exporter: SpanExporter;
  /** Batch spans before export (for network exporters); default: export each span as it ends. */
  batch?: boolean;
  where?: string;
  /** Where the OpenTelemetry SDK's own warnings go (e.g. a collector that cannot be reached). */
  warn?: (message: string) => void;
}

/** Sets tracing up as `options` say; `undefined` when traces are off. */
export function setupTelemetry(
  options: TelemetryOptions,
  warn?: (message: string) => void,
): Telemetry | undefined {
  switch (options.traces) {
    case 'off':
      return undefined;
    case 'console':
      return startTracing({
        serviceName: options.serviceName,
        exporter: new JsonLinesSpanExporter({ write: (text) => process.stdout.write(text) }),
        where: 'JSON lines on stdout',
        warn,
      });
    case 'file': {
      mkdirSync(path.dirname(options.file), { recursive: true });
      const stream = createWriteStream(options.file, { flags: 'a' });
      stream.on('error', (err) => warn?.(`cannot write traces to ${options.file}: ${err.message}`));
      return startTracing({
        serviceName: options.serviceName,
        exporter: new JsonLinesSpanExporter(stream),
        where: `appended to ${options.file}`,
        warn,
      });
    }
    case 'otlp':
      return startTracing({
        serviceName: options.serviceName,
        exporter: new OTLPTraceExporter({ url: options.otlpUrl }),
        batch: true,
        where: `OTLP/HTTP to ${options.otlpUrl}`,
        warn,
      });
  }
}

/** Registers a tracer provider that sends every span to `setup.exporter`. */
export function startTracing(setup: TracingSetup): Telemetry {
  const resource = Resource.default()
    .merge(envDetectorSync.detect())
    .merge(new Resource({ 'service.name': setup.serviceName }));
  const spanProcessor = new WithoutQuerySpans(
    setup.batch ? new BatchSpanProcessor(setup.exporter) : new SimpleSpanProcessor(setup.exporter),
  );
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({
    contextManager: new AsyncLocalStorageContextManager().enable(),
    propagator: new CompositePropagator({
      propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()],
    }),
  });
  if (setup.warn) {
    const warn = setup.warn;
    const quiet = (): void => undefined;
    diag.setLogger(
      {
        error: (m) => warn(`tracing: ${m}`),
        warn: (m) => warn(`tracing: ${m}`),
        info: quiet,
        debug: quiet,
        verbose: quiet,
      },
      DiagLogLevel.WARN,
    );
  }
  let stopped: Promise<void> | undefined;
  return {
    serviceName: setup.serviceName,
    where: setup.where ?? 'a custom exporter',
    resource,
    spanProcessor,
    clientInterceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] },
    forceFlush: () => provider.forceFlush(),
    shutdown: () =>
      (stopped ??= provider.shutdown().finally(() => {
        trace.disable();
        context.disable();
        propagation.disable();
        diag.disable();
      })),
  };
}

/** Passes every span on to `inner` but those of queries (design note, 4). */
class WithoutQuerySpans implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}

  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }

  onEnd(span: ReadableSpan): void {
    if (!/^(QueryWorkflow|HandleQuery):/.test(span.name)) this.inner.onEnd(span);
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

/** Spans reach the exporter through this sink from workflow code; without tracing they go nowhere. */
const NO_WORKFLOW_SPANS: InjectedSinks<BatonTracingSinks> = {
  batonTracing: { export: { fn: () => undefined } },
};

/** A span from workflow code as the SDK's exporters take it, with the workflow's identity as attributes. */
export function workflowSpan(span: WorkflowSpan, info: WorkflowInfo, resource: Resource): ReadableSpan {
  const startTime = millisToHrTime(span.startMs);
  const endTime = millisToHrTime(span.endMs);
  const spanContext = { traceId: span.traceId, spanId: span.spanId, traceFlags: 1 };
  return {
    name: span.name,
    kind: SpanKind.INTERNAL,
    spanContext: () => spanContext,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    startTime,
    endTime,
    duration: hrTimeDuration(startTime, endTime),
    status:
      span.error === undefined
        ? { code: SpanStatusCode.OK }
        : { code: SpanStatusCode.ERROR, message: span.error },
    attributes: {
      temporalWorkflowId: info.workflowId,
      run_id: info.runId,
      temporalWorkflowType: info.workflowType,
      temporalTaskQueue: info.taskQueue,
      ...span.attributes,
    },
    links: [],
    events: [],
    ended: true,
    resource,
    instrumentationLibrary: { name: 'baton-workflow' },
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
}

/**
 * The worker options that trace a worker: the activity interceptors, the `exporter` sink for
 * workflow spans, and the workflow interceptor modules when the worker bundles its workflow code
 * itself. With a prebuilt bundle (`prebuiltBundle`), workflow spans come only from a bundle built
 * with {@link TRACING_WORKFLOW_MODULES}. Without `telemetry`: only the no-op sink.
 */
export function workerTracing(
  telemetry: Telemetry | undefined,
  prebuiltBundle: boolean,
): { interceptors?: WorkerInterceptors; sinks: InjectedSinks<BatonTracingSinks> } {
  if (!telemetry) return { sinks: NO_WORKFLOW_SPANS };
  return {
    interceptors: {
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          // Puts trace_id and span_id on the activity's log lines.
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
      ...(prebuiltBundle ? {} : { workflowModules: [...TRACING_WORKFLOW_MODULES] }),
    },
    sinks: {
      batonTracing: {
        export: {
          fn: (info, spans) => {
            for (const span of spans) {
              telemetry.spanProcessor.onEnd(workflowSpan(span, info, telemetry.resource));
            }
          },
        },
      },
    },
  };
}
