/**
 * A real S3-compatible server on loopback for the tests: moto's S3 server (`python3 -m moto.server`),
 * installed from PyPI into .baton/tools/moto by scripts/install-temporal.sh. It speaks the S3 HTTP API
 * (path-style addressing, SigV4 signed requests with any credentials) and honours
 * `If-None-Match: *` on PutObject, the write-once primitive. Its objects live in its memory.
 */
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../activities/options';
import { freePort } from '../local/temporal';

const MOTO_DIR = path.join(PROJECT_ROOT, '.baton', 'tools', 'moto');

/** Credentials the test server accepts (it accepts any); never real ones. */
export const TEST_S3_CREDENTIALS = {
  AWS_ACCESS_KEY_ID: 'baton-test',
  AWS_SECRET_ACCESS_KEY: 'baton-test-secret',
};

export interface S3Server {
  endpoint: string;
  stop(): Promise<void>;
}

/** Starts moto's S3 server on a free loopback port; resolves once it answers. */
export async function startS3Server(): Promise<S3Server> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let output = '';
  const child: ChildProcess = spawn('python3', ['-m', 'moto.server', '-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH, HOME: process.env.HOME, PYTHONPATH: MOTO_DIR },
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  for (const stream of [child.stdout!, child.stderr!])
    stream.on('data', (c: Buffer) => (output += c.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(
        `moto's S3 server exited (code ${child.exitCode}) before answering; is it installed? Run scripts/install-temporal.sh (it installs moto into ${MOTO_DIR}).\n${output}`,
      );
    }
    const answered = await fetch(`${endpoint}/moto-api/`).then(
      () => true,
      () => false,
    );
    if (answered) return { endpoint, stop };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto's S3 server did not answer at ${endpoint} within 60 s:\n${output}`);
    }
    await sleep(100);
  }
}

/** A client of the test server, for tests that read or write raw objects. */
export const testS3Client = (endpoint: string): S3Client =>
  new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: {
      accessKeyId: TEST_S3_CREDENTIALS.AWS_ACCESS_KEY_ID,
      secretAccessKey: TEST_S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY,
    },
  });

/** Creates a bucket on the test server and answers the environment that points a process at it. */
export async function testBucket(endpoint: string, bucket: string, prefix = ''): Promise<NodeJS.ProcessEnv> {
  await testS3Client(endpoint).send(new CreateBucketCommand({ Bucket: bucket }));
  return {
    BATON_STORE: `s3://${bucket}${prefix ? `/${prefix}` : ''}`,
    BATON_S3_ENDPOINT: endpoint,
    AWS_REGION: 'us-east-1',
    ...TEST_S3_CREDENTIALS,
  };
}
