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
import { NativeConnection, Runtime } from '@temporalio/worker';
import { ConfigError } from '../activities/config';
import { activityOptionsFromEnv } from '../activities/options';
import { dataConverterFor, encryptionFromEnv } from './codec';
import { healthOptionsFromEnv, startHealthServer } from './health';
import { createLogger, logFormatFromEnv, runtimeLogging, secretsFromEnv, type BatonLogger } from './logging';
import { connectionOptions, logLevelFromEnv, temporalOptionsFromEnv } from './options';
import { ensureSearchAttributes } from './search-attributes';
import { setupTelemetry, telemetryOptionsFromEnv, type Telemetry } from './telemetry';
import { createBatonWorker } from './worker';

/** Set as soon as run() has them, so that a failure is logged, and spans flushed, through them. */
let logger: BatonLogger | undefined;
let telemetry: Telemetry | undefined;

async function run(): Promise<void> {
  const temporal = temporalOptionsFromEnv();
  const activityOptions = activityOptionsFromEnv();
  const encryption = encryptionFromEnv();
  const healthOptions = healthOptionsFromEnv();
  const telemetryOptions = telemetryOptionsFromEnv('console');
  logger = createLogger({
    level: logLevelFromEnv('INFO'),
    format: logFormatFromEnv('json'),
    secrets: secretsFromEnv(),
  });
  Runtime.install(runtimeLogging(logger));
  const log = logger;
  telemetry = setupTelemetry(telemetryOptions, (message) => {
    log.warn(message);
  });
  logger.info(telemetry ? `traces: ${telemetry.where}` : 'traces: off', {
    serviceName: telemetryOptions.serviceName,
  });
  if (!activityOptions.apiKey) {
    logger.warn(
      'ANTHROPIC_API_KEY is not set; model calls will fail until it is (see README, "The offline stand-in model").',
    );
  }
  const client = await Connection.connect(connectionOptions(temporal));
  try {
    const added = await ensureSearchAttributes(client, temporal.namespace);
    if (added.length) logger.info(`registered search attributes: ${added.join(', ')}`);
  } finally {
    await client.close();
  }
  const connection = await NativeConnection.connect(connectionOptions(temporal));
  try {
    const dataConverter = dataConverterFor(encryption);
    const worker = await createBatonWorker({
      connection,
      activityOptions,
      dataConverter,
      telemetry,
      ...temporal,
    });
    if (encryption) logger.info(`payload encryption: on, ${encryption.describe()}`);
    const health = healthOptions && (await startHealthServer(healthOptions, () => worker.getState()));
    if (health) logger.info(`health: http://${healthOptions.host}:${health.port}/healthz`);
    logger.info(
      `Baton worker polling task queue "${temporal.taskQueue}" on ${temporal.address} (namespace ${temporal.namespace})`,
      { taskQueue: temporal.taskQueue, namespace: temporal.namespace },
    );
    try {
      await worker.run();
    } finally {
      await health?.close();
    }
  } finally {
    await connection.close();
    await telemetry?.shutdown();
  }
}

run().catch(async (err: unknown) => {
  const message =
    err instanceof ConfigError
      ? `Baton worker refuses to start: ${err.message}`
      : `Baton worker failed: ${err instanceof Error ? err.message : String(err)}`;
  if (logger) logger.error(message);
  else console.error(message);
  await telemetry?.shutdown().catch(() => undefined);
  process.exit(1);
});
