/**
 * Building a Baton worker: the research workflows and the activities on one task queue.
 * Shared by `npm run worker`, `npm start` and the tests, so all three run the same thing.
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import path from 'node:path';
import { createActivities } from '../activities';
import { ConfigError, loadConfig } from '../activities/config';
import { configNotAllowed, type ActivityOptions } from '../activities/options';
import { BUNDLER_OPTIONS } from './bundle';
import { callerCheck } from './callers';
import { dataConverterFromEnv } from './codec';
import { DEFAULT_MAX_CACHED_WORKFLOWS, workerTuningFromEnv, type WorkerTuning } from './options';
import { workerTracing, type Telemetry } from './telemetry';

export interface BatonWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activityOptions: ActivityOptions;
  /** A prebuilt workflow bundle (tests build one per run); default: bundle `workflows/` now. */
  workflowBundle?: WorkerOptions['workflowBundle'];
  /**
   * Payload encryption (workers/codec.ts); default: from the environment (`BATON_ENCRYPTION_KEY*`),
   * none when no key is configured. A prebuilt `workflowBundle` must have been bundled with the same
   * `failureConverterPath`, or failures raised in workflow code keep plaintext messages.
   */
  dataConverter?: WorkerOptions['dataConverter'];
  /** Capacity; default from the environment (`BATON_MAX_CONCURRENT_ACTIVITIES`, `BATON_MAX_CACHED_WORKFLOWS`). */
  tuning?: WorkerTuning;
  /**
   * Tracing (workers/telemetry.ts); default none. Workflow spans need the tracing interceptors in
   * the workflow code: added when this worker bundles `workflows/`; a prebuilt `workflowBundle` must
   * have been bundled with `workflowInterceptorModules: TRACING_WORKFLOW_MODULES`, or only activity
   * and model spans are made, each activity in a trace of its own.
   */
  telemetry?: Telemetry;
}

/**
 * Validates config first (a worker never starts on config it would refuse later), then creates
 * the worker. Throws a {@link ConfigError} listing every problem, or when the config's digest is
 * not on the allow-list the worker was given.
 */
export async function createBatonWorker(options: BatonWorkerOptions): Promise<Worker> {
  const { configDir, configAllowlist } = options.activityOptions;
  const config = await loadConfig(configDir);
  const notAllowed = configNotAllowed(config.digest, configAllowlist);
  if (notAllowed) throw new ConfigError([{ file: path.basename(configDir), path: '', message: notAllowed }]);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.activityOptions),
    dataConverter: options.dataConverter ?? dataConverterFromEnv(),
    // A model call holds its slot while it waits on the network: 500, not the SDK's 100, unless
    // tuned (bench/README.md, table 6: 100 tasks at 10 s model latency ran 2.7x faster).
    maxConcurrentActivityTaskExecutions: 500,
    // Bookkeeping runs as local activities (v18, workflows/calls.ts): a run has at most one in
    // flight, its workflow task held open for the few milliseconds it takes. 500 like activities, not
    // the SDK's 100, so that slots never hold back hundreds of tasks publishing at once (an idle slot
    // costs nothing); past the bound a call waits in the worker for a slot, it does not fail.
    maxConcurrentLocalActivityExecutions: 500,
    // Bounded, so that tasks waiting at a gate for days do not each hold memory (workers/options.ts).
    maxCachedWorkflows: DEFAULT_MAX_CACHED_WORKFLOWS,
    ...(options.tuning ?? workerTuningFromEnv()),
    ...workerInterceptors(
      options.connection,
      options.taskQueue,
      options.telemetry,
      Boolean(options.workflowBundle),
    ),
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : {
          workflowsPath: require.resolve('../workflows'),
          bundlerOptions: BUNDLER_OPTIONS,
        }),
  });
}

/**
 * The interceptors and sinks of a Baton worker on `taskQueue`: tracing (./telemetry.ts, see
 * {@link workerTracing}) and the caller check (./callers.ts), which refuses activities scheduled by
 * anything but Baton's workflows on `taskQueue`. The tests' workers take them too, so they run what
 * production runs.
 */
export function workerInterceptors(
  connection: NativeConnection,
  taskQueue: string,
  telemetry: Telemetry | undefined,
  prebuiltBundle: boolean,
): Pick<WorkerOptions, 'interceptors' | 'sinks'> {
  const tracing = workerTracing(telemetry, prebuiltBundle);
  return {
    sinks: tracing.sinks,
    interceptors: {
      ...tracing.interceptors,
      // After tracing's: a refused activity still has its span, marked as failed.
      activity: [...(tracing.interceptors?.activity ?? []), callerCheck({ connection, taskQueue })],
    },
  };
}
