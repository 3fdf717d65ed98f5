/**
 * `npm run worker`: one worker process on Baton's task queue. Run more of them, on more
 * machines, to scale out. Stops gracefully on SIGINT and SIGTERM (the SDK's default), letting
 * activities in flight finish within the shutdown grace time.
 */
import { Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { ConfigError } from '../activities/config';
import { activityOptionsFromEnv } from '../activities/options';
import { dataConverterFor, encryptionFromEnv } from './codec';
import { healthOptionsFromEnv, startHealthServer } from './health';
import { connectionOptions, logLevelFromEnv, temporalOptionsFromEnv } from './options';
import { ensureSearchAttributes } from './search-attributes';
import { createBatonWorker } from './worker';

async function run(): Promise<void> {
  const temporal = temporalOptionsFromEnv();
  const activityOptions = activityOptionsFromEnv();
  const encryption = encryptionFromEnv();
  const healthOptions = healthOptionsFromEnv();
  Runtime.install({ logger: new DefaultLogger(logLevelFromEnv('INFO')) });
  if (!activityOptions.apiKey) {
    console.warn(
      'warning: ANTHROPIC_API_KEY is not set; model calls will fail until it is (see README, "The offline stand-in model").',
    );
  }
  const client = await Connection.connect(connectionOptions(temporal));
  try {
    const added = await ensureSearchAttributes(client, temporal.namespace);
    if (added.length) console.log(`registered search attributes: ${added.join(', ')}`);
  } finally {
    await client.close();
  }
  const connection = await NativeConnection.connect(connectionOptions(temporal));
  try {
    const dataConverter = dataConverterFor(encryption);
    const worker = await createBatonWorker({ connection, activityOptions, dataConverter, ...temporal });
    if (encryption) console.log(`payload encryption: on, ${encryption.describe()}`);
    const health = healthOptions && (await startHealthServer(healthOptions, () => worker.getState()));
    if (health) console.log(`health: http://${healthOptions.host}:${health.port}/healthz`);
    console.log(
      `Baton worker polling task queue "${temporal.taskQueue}" on ${temporal.address} (namespace ${temporal.namespace})`,
    );
    try {
      await worker.run();
    } finally {
      await health?.close();
    }
  } finally {
    await connection.close();
  }
}

run().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`Baton worker refuses to start: ${err.message}`);
  } else {
    console.error('Baton worker failed:', err instanceof Error ? err.message : err);
  }
  process.exit(1);
});
