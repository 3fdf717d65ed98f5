/**
 * Once per `npm test`: start one real Temporal dev server (the official CLI, provisioned by
 * local/temporal.ts), one real S3-compatible server (moto's, ./s3-server.ts) and bundle the workflow code once, as `npm run build:workflows` does
 * (workers/bundle.ts). Test files get both through the environment: each runs its own workers on its
 * own task queues against this server, in process or as worker processes (bench/processes.ts passes
 * the bundle on as `BATON_WORKFLOW_BUNDLE`), and their own buckets on the S3 server
 * (`BATON_TEST_S3_ENDPOINT`).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDevServer, type DevServer } from '../local/temporal';
import { SEARCH_ATTRIBUTES } from '../contract/messages';
import { writeWorkflowBundle } from '../workers/bundle';
import { startS3Server, type S3Server } from './s3-server';

declare global {
  var __BATON_TEST_SERVER__: DevServer | undefined;
  var __BATON_TEST_S3__: S3Server | undefined;
}

export default async function globalSetup(): Promise<void> {
  // Search attributes registered at start, as `npm start` does (added later, they take seconds to apply).
  const server = await startDevServer({
    searchAttributes: [...SEARCH_ATTRIBUTES],
    log: (line) => process.stderr.write(`[test server] ${line}\n`),
  });
  globalThis.__BATON_TEST_SERVER__ = server;
  process.env.BATON_TEST_TEMPORAL_ADDRESS = server.address;

  const s3 = await startS3Server();
  globalThis.__BATON_TEST_S3__ = s3;
  process.env.BATON_TEST_S3_ENDPOINT = s3.endpoint;

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-bundle-'));
  const file = path.join(dir, 'workflows.js');
  await writeWorkflowBundle(file);
  process.env.BATON_TEST_WORKFLOW_BUNDLE = file;
}
