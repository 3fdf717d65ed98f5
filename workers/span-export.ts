/**
 * Spans as JSON lines: what `BATON_TRACES=console|file` writes, one compact object per span, for a
 * terminal, a log collector that reads stdout, or a file.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { ExportResultCode, hrTimeToMilliseconds, type ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

const STATUS = {
  [SpanStatusCode.UNSET]: 'unset',
  [SpanStatusCode.OK]: 'ok',
  [SpanStatusCode.ERROR]: 'error',
};

/** One span as one compact JSON object (what {@link JsonLinesSpanExporter} writes). */
export function spanRecord(span: ReadableSpan): Record<string, unknown> {
  const { traceId, spanId } = span.spanContext();
  const start = hrTimeToMilliseconds(span.startTime);
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    type: 'span',
    time: iso(hrTimeToMilliseconds(span.endTime)),
    service: span.resource.attributes['service.name'],
    name: span.name,
    kind: SpanKind[span.kind].toLowerCase(),
    traceId,
    spanId,
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    start: iso(start),
    durationMs: Math.round(hrTimeToMilliseconds(span.duration) * 1000) / 1000,
    status: STATUS[span.status.code],
    ...(span.status.message ? { statusMessage: span.status.message } : {}),
    attributes: span.attributes,
    ...(span.events.length
      ? {
          events: span.events.map((e) => ({
            name: e.name,
            time: iso(hrTimeToMilliseconds(e.time)),
            // Stack traces are for a tracing backend (OTLP); a line stays readable without them.
            attributes: Object.fromEntries(
              Object.entries(e.attributes ?? {}).filter(([k]) => k !== 'exception.stacktrace'),
            ),
          })),
        }
      : {}),
  };
}

/**
 * Writes each span as one line of JSON ({@link spanRecord}), for a terminal, a log collector that
 * reads stdout, or a file. `out.end`, when there is one, is called on shutdown.
 */
export class JsonLinesSpanExporter implements SpanExporter {
  private stopped = false;

  constructor(private readonly out: { write(text: string): unknown; end?(done: () => void): unknown }) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    if (this.stopped) {
      done({ code: ExportResultCode.FAILED, error: new Error('the span exporter is shut down') });
      return;
    }
    try {
      this.out.write(spans.map((s) => `${JSON.stringify(spanRecord(s))}\n`).join(''));
      done({ code: ExportResultCode.SUCCESS });
    } catch (err) {
      done({ code: ExportResultCode.FAILED, error: err as Error });
    }
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const { out } = this;
    if (out.end) await new Promise<void>((resolve) => out.end!(resolve));
  }

  async forceFlush(): Promise<void> {
    // Each span is written as it is exported.
  }
}
