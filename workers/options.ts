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
}

export function workerTuningFromEnv(env: NodeJS.ProcessEnv = process.env): WorkerTuning {
  const raw = env.BATON_MAX_CONCURRENT_ACTIVITIES;
  if (!raw) return {};
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 10_000) {
    throw new Error(`BATON_MAX_CONCURRENT_ACTIVITIES must be a whole number from 1 to 10000 (got "${raw}")`);
  }
  return { maxConcurrentActivityTaskExecutions: Number(raw) };
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
