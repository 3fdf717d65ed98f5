/**
 * Worker logs: everything the Temporal SDK's Runtime logger receives (the worker's own lines,
 * workflow `log` calls, which reach it through the SDK's logger sink, activity `log` calls, and
 * Core's lines when forwarded: {@link runtimeLogging}) written by pino as one JSON object per
 * line, or as human-readable lines.
 *
 * Every line has `level`, `time` (when the SDK made the entry, ISO 8601) and `message`. Lines from
 * workflow code carry what the SDK attaches: `workflowId`, `runId`, `workflowType`, `taskQueue`,
 * `namespace`; lines from an activity also `activityId`, `activityType` and `attempt`. (For
 * activities the SDK names the run `workflowRunId`; it is written `runId`, so one field finds a
 * run's workflow and activity lines alike.) With tracing on, also `trace_id` and `span_id`.
 *
 * Secrets are never written: values of the secret environment variables ({@link secretsFromEnv})
 * are replaced by `[redacted]` wherever they appear in a line, fields named like credentials are
 * censored, and the activity task token (which can complete the activity) is left out.
 */
import type { RuntimeOptions } from '@temporalio/worker';
import { LogTimestamp, type Logger, type LogLevel, type LogMetadata } from '@temporalio/worker';
import pino from 'pino';

export type LogFormat = 'json' | 'pretty';

/** The log format. Env `BATON_LOG_FORMAT` (`json` or `pretty`); default `fallback`. */
export function logFormatFromEnv(fallback: LogFormat, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const value = env.BATON_LOG_FORMAT?.toLowerCase();
  if (!value) return fallback;
  if (value !== 'json' && value !== 'pretty') {
    throw new Error(`BATON_LOG_FORMAT must be json or pretty (got "${env.BATON_LOG_FORMAT}")`);
  }
  return value;
}

export const REDACTED = '[redacted]';

/** Environment variables whose values are credentials (`*_API_KEY`, `*_TOKEN`, `*_SECRET`, `*_PASSWORD`, the encryption key). */
const SECRET_VARIABLE = /(?:API_KEY|TOKEN|SECRET|PASSWORD|ENCRYPTION_KEY)$/;
/** Shorter values are not scrubbed from text: they would match ordinary words (tests use keys like `any`). */
const MIN_SECRET_LENGTH = 8;

/**
 * The secret values in `env`: those of {@link SECRET_VARIABLE} variables, and the header values of
 * `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (collectors' auth tokens).
 */
export function secretsFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const values = Object.entries(env).flatMap(([name, value]) =>
    value && SECRET_VARIABLE.test(name) ? [value] : [],
  );
  for (const name of ['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS']) {
    for (const pair of env[name]?.split(',') ?? []) {
      const value = pair.slice(pair.indexOf('=') + 1).trim();
      if (pair.includes('=') && value) values.push(value, decodeURIComponent(value));
    }
  }
  return [...new Set(values)].filter((v) => v.length >= MIN_SECRET_LENGTH);
}

/** Replaces every occurrence of a secret in `text`, as written and as it appears inside a JSON string. */
export function redactor(secrets: readonly string[]): (text: string) => string {
  const needles = [
    ...new Set(
      secrets
        .filter((s) => s.length >= MIN_SECRET_LENGTH)
        .flatMap((s) => [s, JSON.stringify(s).slice(1, -1)]),
    ),
  ].sort((a, b) => b.length - a.length);
  if (needles.length === 0) return (text) => text;
  return (text) =>
    needles.reduce((t, needle) => (t.includes(needle) ? t.split(needle).join(REDACTED) : t), text);
}

/** Field names censored wherever they appear, up to three levels deep. */
const SECRET_FIELDS = [
  'apiKey',
  'api_key',
  'authorization',
  'Authorization',
  '["x-api-key"]',
  'password',
  'secret',
  'token',
  'accessToken',
  'encryptionKey',
  'taskToken',
];
const REDACT_PATHS = SECRET_FIELDS.flatMap((f) => {
  const step = f.startsWith('[') ? f : `.${f}`;
  return [f, `*${step}`, `*.*${step}`];
});

export interface BatonLoggerOptions {
  /** Lines below this level are dropped. */
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; default stdout for `json`, stderr for `pretty` (as the SDK's DefaultLogger). */
  destination?: { write(text: string): unknown };
  /** Values never to write (see {@link secretsFromEnv}). */
  secrets?: readonly string[];
}

/** A Temporal {@link Logger} (for `Runtime.install`) writing through pino. */
export interface BatonLogger extends Logger {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

const PINO_LEVEL = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' } as const;

/** The SDK's attributes as written: time from the entry, `runId` for activities too, no task token. */
function fields(meta: LogMetadata | undefined): Record<string, unknown> {
  const stamp: unknown = meta?.[LogTimestamp];
  const ms = typeof stamp === 'bigint' ? Number(stamp / 1_000_000n) : Date.now();
  const out: Record<string, unknown> = { time: new Date(ms).toISOString() };
  for (const [key, value] of Object.entries(meta ?? {})) {
    if (key === 'taskToken') continue;
    if (key === 'workflowRunId' && !('runId' in (meta ?? {}))) out.runId = value;
    else out[key] = value;
  }
  return out;
}

/** A JSON line as a person reads it: `<time> [LEVEL] message {other fields}`. */
function prettyLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const rest = Object.fromEntries(
    Object.entries(entry).filter(([k]) => !['time', 'level', 'message', 'pid', 'hostname'].includes(k)),
  );
  const extra = Object.keys(rest).length ? ` ${JSON.stringify(rest)}` : '';
  return `${String(entry.time)} [${String(entry.level).toUpperCase()}] ${String(entry.message)}${extra}\n`;
}

export function createLogger(options: BatonLoggerOptions): BatonLogger {
  const destination =
    options.destination ??
    (options.format === 'json'
      ? { write: (text: string) => process.stdout.write(text) }
      : { write: (text: string) => process.stderr.write(text) });
  const scrub = redactor(options.secrets ?? []);
  const pretty = options.format === 'pretty';
  const out = pino(
    {
      level: PINO_LEVEL[options.level],
      messageKey: 'message',
      // `time` comes from the SDK's entry (fields()): the Runtime buffers and reorders entries.
      timestamp: false,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
    },
    { write: (line: string) => destination.write(pretty ? prettyLine(scrub(line)) : scrub(line)) },
  );
  const log = (level: LogLevel, message: string, meta?: LogMetadata): void => {
    const method = PINO_LEVEL[level] ?? 'info';
    if (out.isLevelEnabled(method)) out[method](fields(meta), message);
  };
  return {
    level: options.level,
    format: options.format,
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}

const SEVERITY: LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/**
 * `Runtime.install` options that send everything through `logger`: Core's own lines are forwarded
 * to it too (otherwise Core writes them to stderr in its own format), at WARN or above, since
 * below that Core is very chatty.
 */
export function runtimeLogging(logger: BatonLogger): Pick<RuntimeOptions, 'logger' | 'telemetryOptions'> {
  const core = SEVERITY.indexOf(logger.level) > SEVERITY.indexOf('WARN') ? logger.level : 'WARN';
  return { logger, telemetryOptions: { logging: { forward: {}, filter: { core, other: 'ERROR' } } } };
}
