/**
 * Building a Baton worker: the research workflows and the activities on one task queue.
 * Shared by `npm run worker`, `npm start` and the tests, so all three run the same thing.
 */
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { loadConfig } from '../activities/config';
import type { ActivityOptions } from '../activities/options';

export interface BatonWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activityOptions: ActivityOptions;
  /** A prebuilt workflow bundle (tests build one per run); default: bundle `workflows/` now. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

/**
 * Validates config first (a worker never starts on config it would refuse later), then creates
 * the worker. Throws a {@link ConfigError} listing every problem.
 */
export async function createBatonWorker(options: BatonWorkerOptions): Promise<Worker> {
  await loadConfig(options.activityOptions.configDir);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities(options.activityOptions),
    ...(options.workflowBundle
      ? { workflowBundle: options.workflowBundle }
      : { workflowsPath: require.resolve('../workflows') }),
  });
}
