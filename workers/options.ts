/**
 * How workers and clients reach Temporal, parsed once from the environment. The same variables
 * serve a local dev server, a self-hosted cluster (TLS or mTLS) and Temporal Cloud (API key).
 */
import { readFileSync } from 'node:fs';

export interface TemporalOptions {
  /** Frontend address, `host:port`. Env `TEMPORAL_ADDRESS`; default `localhost:7233`. */
  address: string;
  /** Namespace. Env `TEMPORAL_NAMESPACE`; default `default`. */
  namespace: string;
  /** Task queue Baton's workers poll and tasks are started on. Env `BATON_TASK_QUEUE`; default `baton`. */
  taskQueue: string;
  /** API key for Temporal Cloud. Env `TEMPORAL_API_KEY`; implies TLS. Never logged. */
  apiKey?: string;
  /**
   * TLS: `false` (plaintext, the default), `true` (TLS verified against the system's CAs: env
   * `TEMPORAL_TLS=true`, or implied by an API key), or TLS with any of: a private CA to verify the
   * server (env `TEMPORAL_TLS_CA`, PEM file), the name to expect in the server's certificate (env
   * `TEMPORAL_TLS_SERVER_NAME`), and an mTLS client pair (env `TEMPORAL_TLS_CERT` and
   * `TEMPORAL_TLS_KEY`, PEM files).
   */
  tls: boolean | TlsSettings;
}

/** TLS beyond the defaults, as `Connection.connect` and `NativeConnection.connect` take it. */
export interface TlsSettings {
  serverRootCACertificate?: Buffer;
  serverNameOverride?: string;
  clientCertPair?: { crt: Buffer; key: Buffer };
}

/** The options `Connection.connect` and `NativeConnection.connect` both take. */
export function connectionOptions(options: TemporalOptions): {
  address: string;
  tls: TemporalOptions['tls'];
  apiKey?: string;
} {
  return {
    address: options.address,
    tls: options.tls,
    ...(options.apiKey ? { apiKey: options.apiKey } : {}),
  };
}

export const DEFAULT_TASK_QUEUE = 'baton';

export function temporalOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalOptions {
  const address = env.TEMPORAL_ADDRESS || 'localhost:7233';
  if (!/^[^\s:]+:\d{1,5}$/.test(address)) {
    throw new Error(`TEMPORAL_ADDRESS must be host:port, e.g. localhost:7233 (got "${address}")`);
  }
  const cert = env.TEMPORAL_TLS_CERT;
  const key = env.TEMPORAL_TLS_KEY;
  if (Boolean(cert) !== Boolean(key)) {
    throw new Error(
      'TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (PEM files of the mTLS client pair)',
    );
  }
  if (env.TEMPORAL_TLS && !['true', 'false'].includes(env.TEMPORAL_TLS)) {
    throw new Error(`TEMPORAL_TLS must be "true" or "false" (got "${env.TEMPORAL_TLS}")`);
  }
  const read = (name: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${name}=${file} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const ca = env.TEMPORAL_TLS_CA;
  const serverName = env.TEMPORAL_TLS_SERVER_NAME;
  const settings: TlsSettings = {
    ...(ca ? { serverRootCACertificate: read('TEMPORAL_TLS_CA', ca) } : {}),
    ...(serverName ? { serverNameOverride: serverName } : {}),
    ...(cert && key
      ? { clientCertPair: { crt: read('TEMPORAL_TLS_CERT', cert), key: read('TEMPORAL_TLS_KEY', key) } }
      : {}),
  };
  if (Object.keys(settings).length > 0 && env.TEMPORAL_TLS === 'false') {
    throw new Error(
      'TEMPORAL_TLS=false contradicts TEMPORAL_TLS_CA / TEMPORAL_TLS_SERVER_NAME / TEMPORAL_TLS_CERT, which configure TLS',
    );
  }
  return {
    address,
    namespace: env.TEMPORAL_NAMESPACE || 'default',
    taskQueue: env.BATON_TASK_QUEUE || DEFAULT_TASK_QUEUE,
    apiKey,
    tls:
      Object.keys(settings).length > 0
        ? settings
        : env.TEMPORAL_TLS === 'true' || (apiKey !== undefined && env.TEMPORAL_TLS !== 'false'),
  };
}

/** Worker capacity, for sizing workers to their machine (and for tests that need a small one). */
export interface WorkerTuning {
  /** Activities (model calls) one worker runs at once. Env `BATON_MAX_CONCURRENT_ACTIVITIES`; default 500 (workers/worker.ts). */
  maxConcurrentActivityTaskExecutions?: number;
  /**
   * Workflow runs kept in the worker's sticky cache. Env `BATON_MAX_CACHED_WORKFLOWS`; default
   * {@link DEFAULT_MAX_CACHED_WORKFLOWS} (workers/worker.ts).
   */
  maxCachedWorkflows?: number;
}

/**
 * Workflow runs a worker keeps in memory between their workflow tasks (the sticky cache), unless
 * `BATON_MAX_CACHED_WORKFLOWS` says otherwise. Each cached run holds its own instance of the workflow
 * code's modules (at least 1.3 MiB of heap on the benchmark), and a task waiting at a gate stays cached
 * for days; the SDK's default grows with the heap limit (about 2,300 runs with Node's default heap on a
 * machine with 16 GB or more), and 500 waiting tasks held a worker at 1.4 GiB. Past this bound the least
 * recently used run is evicted; it replays its history (a waiting task: about a dozen events) at its next
 * workflow task, e.g. when a decision arrives. 100 keeps the runs of 100 tasks in progress at once
 * (bench/README.md, table 3) without replays. docs/operations.md, "Workers".
 */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 100;

/** A whole number from `min` to `max` in the variable `name`, or undefined when it is unset. */
function wholeNumberFromEnv(
  env: NodeJS.ProcessEnv,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const raw = env[name];
  if (!raw) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  }
  return Number(raw);
}

export function workerTuningFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerTuning {
  const activities = wholeNumberFromEnv(env, 'BATON_MAX_CONCURRENT_ACTIVITIES', 1, 10_000);
  // 0 turns the cache off (every workflow task replays its run's history); the SDK takes no 1.
  const cached = wholeNumberFromEnv(env, 'BATON_MAX_CACHED_WORKFLOWS', 0, 100_000);
  if (cached === 1)
    throw new Error('BATON_MAX_CACHED_WORKFLOWS must be 0 (no cache) or at least 2 (got "1")');
  return {
    ...(activities !== undefined ? { maxConcurrentActivityTaskExecutions: activities } : {}),
    ...(cached !== undefined ? { maxCachedWorkflows: cached } : {}),
  };
}

const LOG_LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The SDK log level. Env `BATON_LOG_LEVEL` (TRACE, DEBUG, INFO, WARN, ERROR); default `fallback`. */
export function logLevelFromEnv(fallback: LogLevel, env: NodeJS.ProcessEnv = process.env): LogLevel {
  const value = env.BATON_LOG_LEVEL?.toUpperCase();
  if (!value) return fallback;
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new Error(`BATON_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${env.BATON_LOG_LEVEL}")`);
  }
  return value as LogLevel;
}
