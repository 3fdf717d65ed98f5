/**
 * `npm run worker`: one worker process on Baton's task queue. Run more of them, on more
 * machines, to scale out. Stops gracefully on SIGINT and SIGTERM (the SDK's default), letting
 * activities in flight finish within the shutdown grace time.
 *
 * Logs are JSON lines on stdout (`BATON_LOG_FORMAT=pretty` for people: workers/logging.ts); spans
 * go to stdout as JSON lines too, or to an OTLP collector when one is configured
 * (workers/telemetry.ts), and are flushed on the way out.
 */
import { Connection } from '@temporalio/client';
import path from 'node:path';
import { ConfigError } from '../activities/config';
import { activityOptionsFromEnv, PROJECT_ROOT } from '../activities/options';
import { describeStore } from '../activities/store-settings';
import { command, runMain } from '../lib/cli';
import { workflowBundleFromEnv } from './bundle';
import { dataConverterFor, encryptionFromEnv } from './codec';
import { healthOptionsFromEnv, startHealthServer } from './health';
import { connectionOptions, temporalOptionsFromEnv } from './options';
import { installRuntime, runWorker, type BatonRuntime } from './runtime';
import { ensureSearchAttributes } from './search-attributes';
import { sealerFor } from './store';

const USAGE = `usage: npm run worker | npm run worker:prod

Runs one Baton worker on the task queue BATON_TASK_QUEUE (default baton) until SIGINT or SIGTERM.
Configured by the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*,
ANTHROPIC_API_KEY, BATON_ENCRYPTION_KEY(_FILE), BATON_HEALTH_PORT, BATON_LOG_LEVEL, BATON_LOG_FORMAT,
BATON_TRACES and the others docs/configuration.md lists. BATON_WORKFLOW_BUNDLE names a workflow bundle
built by \`npm run build:workflows\` to load instead of bundling workflows/ at start. \`npm run worker:prod\`
runs the compiled worker (\`npm run build\`: dist/) with the bundle built beside it, dist/workflow-bundle.js.`;

/**
 * The compiled worker (`npm run build`) runs from dist/workers/, where the code's folder defaults,
 * relative to its own files (PROJECT_ROOT in activities/options.ts), would name dist/config,
 * dist/reports and dist/.baton: there the checkout's own folders are made the defaults, as for
 * `npm run worker`, by setting the variables left unset (or empty, which means unset).
 */
function useCheckoutFolders(env: NodeJS.ProcessEnv): void {
  if (path.basename(PROJECT_ROOT) !== 'dist') return;
  const root = path.dirname(PROJECT_ROOT);
  const defaults = {
    BATON_CONFIG_DIR: path.join(root, 'config'),
    BATON_ARTIFACT_DIR: path.join(root, '.baton', 'artifacts'),
    BATON_REPORT_DIR: path.join(root, 'reports'),
    BATON_TRACES_FILE: path.join(root, '.baton', 'traces.jsonl'),
  };
  for (const [name, value] of Object.entries(defaults)) env[name] ||= value;
}

/** Everything `npm run worker` reads from the environment, read before anything starts. */
function optionsFromEnv() {
  return {
    temporal: temporalOptionsFromEnv(),
    activityOptions: activityOptionsFromEnv(),
    encryption: encryptionFromEnv(),
    healthOptions: healthOptionsFromEnv(),
    workflowBundle: workflowBundleFromEnv(),
  };
}

async function run(runtime: BatonRuntime, options: ReturnType<typeof optionsFromEnv>): Promise<void> {
  const { logger, telemetry, telemetryOptions } = runtime;
  const { temporal, activityOptions, encryption, healthOptions, workflowBundle } = options;
  logger.info(telemetry ? `traces: ${telemetry.where}` : 'traces: off', {
    serviceName: telemetryOptions.serviceName,
  });
  if (!activityOptions.apiKey) {
    logger.warn(
      'ANTHROPIC_API_KEY is not set; model calls will fail until it is (see docs/testing.md, "The offline stand-in model").',
    );
  }
  const client = await Connection.connect(connectionOptions(temporal));
  try {
    const added = await ensureSearchAttributes(client, temporal.namespace);
    if (added.length) logger.info(`registered search attributes: ${added.join(', ')}`);
  } finally {
    await client.close();
  }
  logger.info(
    workflowBundle
      ? `workflows: prebuilt bundle ${workflowBundle.codePath}`
      : 'workflows: bundling workflows/ at start (BATON_WORKFLOW_BUNDLE skips this: docs/operations.md, "Workers")',
  );
  const running = await runWorker({
    temporal,
    activityOptions: { ...activityOptions, ...(encryption ? { sealer: sealerFor(encryption) } : {}) },
    dataConverter: dataConverterFor(encryption),
    telemetry,
    workflowBundle,
  });
  if (encryption) logger.info(`payload encryption: on, ${encryption.describe()}`);
  logger.info(
    `store: ${describeStore(activityOptions)}${encryption ? ', encrypted with the payload keys' : ''}`,
  );
  const health = healthOptions && (await startHealthServer(healthOptions, () => running.worker.getState()));
  if (health) logger.info(`health: http://${healthOptions.host}:${health.port}/healthz`);
  logger.info(
    `Baton worker polling task queue "${temporal.taskQueue}" on ${temporal.address} (namespace ${temporal.namespace})`,
    { taskQueue: temporal.taskQueue, namespace: temporal.namespace },
  );
  try {
    await running.done;
  } finally {
    await health?.close();
  }
}

const main = command({ name: 'npm run worker', usage: USAGE, options: {} }, async () => {
  let runtime: BatonRuntime | undefined;
  try {
    useCheckoutFolders(process.env);
    const options = optionsFromEnv();
    runtime = installRuntime({ logLevel: 'INFO', logFormat: 'json', traces: 'console' });
    await run(runtime, options);
    return 0;
  } catch (err) {
    const message =
      err instanceof ConfigError
        ? `Baton worker refuses to start: ${err.message}`
        : `Baton worker failed: ${err instanceof Error ? err.message : String(err)}`;
    if (runtime) runtime.logger.error(message);
    else console.error(message);
    return 1;
  } finally {
    await runtime?.telemetry?.shutdown().catch(() => undefined);
  }
});

if (require.main === module) runMain(main);
