/**
 * What every process that runs a Baton worker sets up, written once for `npm run worker`
 * (workers/main.ts) and `npm start` (cli/start.ts): the SDK's logging through Baton's logger,
 * tracing, and a worker that runs until it is asked to stop and then drains.
 */
import type { DataConverter } from '@temporalio/common';
import { NativeConnection, Runtime, type Worker, type WorkerOptions } from '@temporalio/worker';
import type { ActivityOptions } from '../activities/options';
import { createLogger, logFormatFromEnv, runtimeLogging, secretsFromEnv, type BatonLogger } from './logging';
import type { LogFormat } from './logging';
import { connectionOptions, logLevelFromEnv, type LogLevel, type TemporalOptions } from './options';
import { setupTelemetry, telemetryOptionsFromEnv, type Telemetry, type TelemetryOptions } from './telemetry';
import { createBatonWorker } from './worker';

export interface RuntimeDefaults {
  /** SDK log level unless `BATON_LOG_LEVEL` says otherwise. */
  logLevel: LogLevel;
  /** Log format unless `BATON_LOG_FORMAT` says otherwise. */
  logFormat: LogFormat;
  /** Where spans go unless `BATON_TRACES` (or an OTLP endpoint) says otherwise. */
  traces: Exclude<TelemetryOptions['traces'], 'otlp'>;
}

export interface BatonRuntime {
  logger: BatonLogger;
  /** Undefined when tracing is off. */
  telemetry?: Telemetry;
  telemetryOptions: TelemetryOptions;
}

/**
 * Reads the logging and tracing options (throwing on a bad value before anything is set up),
 * installs the SDK's Runtime with Baton's logger, and starts tracing.
 */
export function installRuntime(defaults: RuntimeDefaults): BatonRuntime {
  const telemetryOptions = telemetryOptionsFromEnv(defaults.traces);
  const logger = createLogger({
    level: logLevelFromEnv(defaults.logLevel),
    format: logFormatFromEnv(defaults.logFormat),
    secrets: secretsFromEnv(),
  });
  Runtime.install(runtimeLogging(logger));
  const telemetry = setupTelemetry(telemetryOptions, (message) => {
    logger.warn(message);
  });
  return { logger, telemetry, telemetryOptions };
}

export interface RunWorkerOptions {
  temporal: TemporalOptions;
  activityOptions: ActivityOptions;
  dataConverter?: DataConverter;
  telemetry?: Telemetry;
  /**
   * A prebuilt workflow bundle (`npm run build:workflows`: workers/bundle.ts, with the tracing
   * interceptors and the failure converter); default: bundle `workflows/` at start.
   */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/** A worker polling its task queue. */
export interface RunningWorker {
  worker: Worker;
  /** Settles when the worker has stopped: after a shutdown signal (SIGINT, SIGTERM) or {@link stop}. */
  done: Promise<void>;
  /** Asks the worker to stop, waits for the activities in flight (the drain), closes its connection. */
  stop(): Promise<void>;
}

/**
 * Connects and starts a Baton worker (workers/worker.ts). It stops gracefully on SIGINT and
 * SIGTERM (the SDK's default) or on `stop()`; either way its connection is closed once it has.
 */
export async function runWorker(options: RunWorkerOptions): Promise<RunningWorker> {
  const connection = await NativeConnection.connect(connectionOptions(options.temporal));
  let worker: Worker;
  try {
    worker = await createBatonWorker({
      connection,
      activityOptions: options.activityOptions,
      dataConverter: options.dataConverter,
      telemetry: options.telemetry,
      workflowBundle: options.workflowBundle,
      namespace: options.temporal.namespace,
      taskQueue: options.temporal.taskQueue,
    });
  } catch (err) {
    await connection.close();
    throw err;
  }
  const done = worker.run().finally(() => connection.close());
  return {
    worker,
    done,
    stop: async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}
