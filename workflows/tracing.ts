/**
 * Workflow interceptors for tracing: bundled into the workflow code (`workflowInterceptorModules`)
 * when a worker traces (workers/telemetry.ts). Not a workflow.
 *
 * They make `RunWorkflow:<type>`, `StartActivity:<type>`, `StartChildWorkflow:<type>`,
 * `HandleSignal:<name>` and `HandleUpdate:<name>` spans, continue the trace context the client sent
 * in the start request's headers, and pass it on to activities and child workflows in the header
 * `@temporalio/interceptors-opentelemetry` uses (`_tracer-data`, W3C `traceparent`), so that its
 * client and activity interceptors join the same trace.
 *
 * Design note: why not that package's own workflow interceptors. Bundled in, they change *when*
 * workflow code resumes: their `async` wrappers add microtask turns to every activity result,
 * signal and update. A task started without them and replayed with them (tracing turned on), or the
 * reverse (turned off), then issues its commands in another order: the recorded histories with
 * `decide` Updates fail replay with a nondeterminism error (test/telemetry.test.ts shows it).
 * These interceptors are timing-neutral instead:
 *   1. Every method calls `next` synchronously and returns *the same promise* `next` returned.
 *      Spans end in a reaction attached to it, which issues no command and never throws, so the
 *      workflow sees the same order of events with or without them. (One difference: that
 *      reaction handles a rejection, so an activity promise the workflow never awaits no longer
 *      fails the task as an unhandled rejection; the lint forbids such floating promises.)
 *   2. Span ids derive from the run id and a counter, never from the workflow's seeded random
 *      source, which the workflow's own code may use: a replay makes the same ids, and the
 *      workflow's random values do not change.
 *   3. No spans in query handlers or update validators: they do not run on replay, and they would
 *      shift the counter.
 *   4. Spans leave through the `batonTracing` sink, which the SDK does not call while replaying, so
 *      a task moving to another worker does not export its spans twice.
 */
import {
  ContinueAsNew,
  defaultPayloadConverter,
  proxySinks,
  workflowInfo,
  type Headers,
  type Next,
  type Sink,
  type Sinks,
  type WorkflowInboundCallsInterceptor,
  type WorkflowInterceptors,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';

/** The header `@temporalio/interceptors-opentelemetry` carries the trace context in (a JSON text map). */
export const TRACE_HEADER = '_tracer-data';

/** A finished workflow span, as it crosses the sink (plain data). */
export interface WorkflowSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  /** Workflow time (deterministic), in ms since the epoch. */
  startMs: number;
  endMs: number;
  /** Set when what the span covers failed. */
  error?: string;
  attributes: Record<string, string | number | boolean>;
}

export interface BatonTracingSinks extends Sinks {
  batonTracing: Sink & { export(spans: WorkflowSpan[]): void };
}

interface SpanContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
}

const MASK64 = 0xffffffffffffffffn;

/**
 * FNV-1a over `text`, then MurmurHash3's 64-bit finalizer (so that similar texts give unlike ids),
 * as 16 hex digits: deterministic ids without the workflow's random source.
 */
function hash64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * 0x100000001b3n) & MASK64;
  }
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK64;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK64;
  h ^= h >> 33n;
  const hex = h.toString(16).padStart(16, '0');
  return hex === '0000000000000000' ? '0000000000000001' : hex;
}

/** The W3C trace context in `headers`, if any. */
function extract(headers: Headers): SpanContext | undefined {
  const payload = headers[TRACE_HEADER];
  if (!payload) return undefined;
  try {
    const carrier = defaultPayloadConverter.fromPayload<Record<string, unknown>>(payload);
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(
      typeof carrier.traceparent === 'string' ? carrier.traceparent : '',
    );
    if (!match || /^0+$/.test(match[1]!) || /^0+$/.test(match[2]!)) return undefined;
    return { traceId: match[1]!, spanId: match[2]!, sampled: (parseInt(match[3]!, 16) & 1) === 1 };
  } catch {
    return undefined;
  }
}

function inject(headers: Headers, span: SpanContext): Headers {
  const traceparent = `00-${span.traceId}-${span.spanId}-${span.sampled ? '01' : '00'}`;
  return { ...headers, [TRACE_HEADER]: defaultPayloadConverter.toPayload({ traceparent }) };
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export const interceptors = (): WorkflowInterceptors => {
  const { runId } = workflowInfo();
  const { batonTracing } = proxySinks<BatonTracingSinks>();
  let counter = 0;
  let run: SpanContext | undefined;

  /** Starts a span; `end` finishes and exports it. Never throws. */
  const start = (
    name: string,
    parent: SpanContext | undefined,
    attributes: WorkflowSpan['attributes'] = {},
  ): SpanContext & { end(error?: unknown): void } => {
    const traceId = parent?.traceId ?? `${hash64(`${runId}/trace`)}${hash64(`${runId}/trace/2`)}`;
    const spanId = hash64(`${runId}/span/${counter++}`);
    const sampled = parent?.sampled ?? true;
    const startMs = Date.now();
    return {
      traceId,
      spanId,
      sampled,
      end(error?: unknown) {
        if (!sampled) return;
        try {
          batonTracing.export([
            {
              name,
              traceId,
              spanId,
              ...(parent ? { parentSpanId: parent.spanId } : {}),
              startMs,
              endMs: Date.now(),
              ...(error === undefined ? {} : { error: message(error) }),
              attributes,
            },
          ]);
        } catch {
          // Tracing never fails a workflow task.
        }
      },
    };
  };

  /** Calls `call()` and returns its very promise, ending `span` when it settles (design note, 1). */
  const within = <T>(
    span: { end(error?: unknown): void },
    call: () => Promise<T>,
    ok?: (err: unknown) => boolean,
  ): Promise<T> => {
    let promise: Promise<T>;
    try {
      promise = call();
    } catch (err) {
      span.end(err);
      throw err;
    }
    promise.then(
      () => span.end(),
      (err: unknown) => span.end(ok?.(err) ? undefined : err),
    );
    return promise;
  };

  const inbound: WorkflowInboundCallsInterceptor = {
    execute(input, next: Next<WorkflowInboundCallsInterceptor, 'execute'>) {
      const span = start(`RunWorkflow:${workflowInfo().workflowType}`, extract(input.headers));
      run = span;
      return within(
        span,
        () => next(input),
        (err) => err instanceof ContinueAsNew,
      );
    },
    handleSignal(input, next: Next<WorkflowInboundCallsInterceptor, 'handleSignal'>) {
      const span = start(`HandleSignal:${input.signalName}`, extract(input.headers) ?? run);
      return within(span, () => next(input));
    },
    handleUpdate(input, next: Next<WorkflowInboundCallsInterceptor, 'handleUpdate'>) {
      const span = start(`HandleUpdate:${input.name}`, extract(input.headers) ?? run, {
        temporalUpdateId: input.updateId,
      });
      return within(span, () => next(input));
    },
  };

  // Outgoing calls are children of the run's span, those made from signal or update handlers too.
  const outbound: WorkflowOutboundCallsInterceptor = {
    scheduleActivity(input, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>) {
      const span = start(`StartActivity:${input.activityType}`, run);
      return within(span, () => next({ ...input, headers: inject(input.headers, span) }));
    },
    scheduleLocalActivity(input, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleLocalActivity'>) {
      const span = start(`StartActivity:${input.activityType}`, run);
      return within(span, () => next({ ...input, headers: inject(input.headers, span) }));
    },
    startChildWorkflowExecution(
      input,
      next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
    ) {
      const span = start(`StartChildWorkflow:${input.workflowType}`, run, {
        temporalChildWorkflowId: input.options.workflowId,
      });
      let promise: ReturnType<typeof next>;
      try {
        promise = next({ ...input, headers: inject(input.headers, span) });
      } catch (err) {
        span.end(err);
        throw err;
      }
      // Ends when the child has started (or could not be).
      promise.then(
        ([started]) =>
          started.then(
            () => span.end(),
            (err: unknown) => span.end(err),
          ),
        (err: unknown) => span.end(err),
      );
      return promise;
    },
    continueAsNew(input, next: Next<WorkflowOutboundCallsInterceptor, 'continueAsNew'>) {
      return next(run ? { ...input, headers: inject(input.headers, run) } : input);
    },
    getLogAttributes(input, next: Next<WorkflowOutboundCallsInterceptor, 'getLogAttributes'>) {
      // Workflow log lines carry the task's trace (workers/logging.ts).
      return next(run ? { trace_id: run.traceId, span_id: run.spanId, ...input } : input);
    },
  };

  return { inbound: [inbound], outbound: [outbound] };
};
