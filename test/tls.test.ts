/**
 * TLS and mTLS to Temporal, configured from the environment as in production. The dev server speaks
 * plaintext, so a TLS front end (Node's `tls`, requiring a client certificate from a private CA)
 * stands before it, as a load balancer would before a cluster. A client and a worker configured
 * only through TEMPORAL_* variables run a task through it; without the client certificate, or
 * without the private CA, the connection is refused.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { researchTask } from '../workflows';
import { connectionOptions, temporalOptionsFromEnv } from '../workers/options';
import { workerTracing } from '../workers/telemetry';
import { fakeModelActivities, tempActivityOptions, uniqueId } from './helpers';

const SERVER_NAME = 'temporal.baton.test';
let dir: string;
let front: tls.Server;
let address: string;
/** Common names of the client certificates the front end accepted. */
const accepted: string[] = [];

function openssl(...args: string[]): void {
  const run = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${run.stderr}`);
}

/** A private CA, a server certificate for SERVER_NAME and a client certificate, all short-lived. */
async function makeCertificates(): Promise<void> {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '1',
    '-subj',
    '/CN=Baton test CA',
  );
  const issue = async (name: string, ext: string): Promise<void> => {
    await fs.writeFile(path.join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\n${ext}\n`);
    openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    );
  };
  await issue('server', `subjectAltName=DNS:${SERVER_NAME}\nextendedKeyUsage=serverAuth`);
  await issue('baton-worker', 'extendedKeyUsage=clientAuth');
}

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-tls-'));
  await makeCertificates();
  const read = (name: string) => fs.readFile(path.join(dir, name));
  const [upstreamHost, upstreamPort] = process.env.BATON_TEST_TEMPORAL_ADDRESS!.split(':');
  front = tls.createServer(
    {
      key: await read('server.key'),
      cert: await read('server.pem'),
      ca: await read('ca.pem'),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
    },
    (socket) => {
      const cn = socket.getPeerCertificate().subject?.CN;
      if (typeof cn === 'string' && !accepted.includes(cn)) accepted.push(cn);
      const upstream = net.connect(Number(upstreamPort), upstreamHost);
      socket.pipe(upstream).pipe(socket);
      const close = () => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', close);
      upstream.on('error', close);
    },
  );
  front.on('tlsClientError', () => undefined); // refused handshakes are what some tests expect
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(front.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => front?.close(resolve));
});

/** The environment of a worker or client deployed against the TLS front end. */
const env = (overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({
  TEMPORAL_ADDRESS: address,
  TEMPORAL_TLS_CA: path.join(dir, 'ca.pem'),
  TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
  TEMPORAL_TLS_CERT: path.join(dir, 'baton-worker.pem'),
  TEMPORAL_TLS_KEY: path.join(dir, 'baton-worker.key'),
  ...overrides,
});

test('a worker and a client configured only by TEMPORAL_* variables run a task over mTLS', async () => {
  const temporal = temporalOptionsFromEnv(env());
  expect(temporal.tls).toMatchObject({ serverNameOverride: SERVER_NAME });
  const connection = await Connection.connect(connectionOptions(temporal));
  const nativeConnection = await NativeConnection.connect(connectionOptions(temporal));
  try {
    const client = new Client({ connection, namespace: temporal.namespace });
    const { activities } = fakeModelActivities(await tempActivityOptions());
    const taskQueue = uniqueId('tls');
    const worker = await Worker.create({
      connection: nativeConnection,
      taskQueue,
      activities,
      workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! },
      // The bundle's tracing interceptors call a sink every Baton worker registers (a no-op here).
      ...workerTracing(undefined, true),
    });
    const result = await worker.runUntil(
      client.workflow.execute(researchTask, {
        taskQueue,
        workflowId: uniqueId('tls'),
        args: [{ question: 'Does TLS work?', playbook: 'open' }],
      }),
    );
    expect(result.outcome).toBe('completed');
    expect(accepted).toEqual(['baton-worker']);
  } finally {
    await nativeConnection.close();
    await connection.close();
  }
});

test.each<[string, NodeJS.ProcessEnv]>([
  ['without the client certificate', { TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' }],
  ['without the private CA (the system CAs do not know it)', { TEMPORAL_TLS_CA: '' }],
  ['expecting another server name', { TEMPORAL_TLS_SERVER_NAME: 'other.baton.test' }],
])('the connection is refused %s', async (_name, overrides) => {
  const options = connectionOptions(temporalOptionsFromEnv(env(overrides)));
  const connected = await Connection.connect({ ...options, connectTimeout: '3s' }).then(
    async (c) => {
      // Some refusals surface only on the first call.
      try {
        await c.workflowService.getSystemInfo({});
        return true;
      } catch {
        return false;
      } finally {
        await c.close();
      }
    },
    () => false,
  );
  expect(connected).toBe(false);
});

test.each<[string, NodeJS.ProcessEnv, RegExp]>([
  ['TLS settings with TEMPORAL_TLS=false', { TEMPORAL_TLS: 'false' }, /TEMPORAL_TLS=false contradicts/],
  [
    'an unreadable CA file',
    { TEMPORAL_TLS_CA: '/nonexistent/ca.pem' },
    /TEMPORAL_TLS_CA=\/nonexistent\/ca.pem cannot be read/,
  ],
  [
    'a certificate without its key',
    { TEMPORAL_TLS_KEY: '' },
    /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/,
  ],
])('%s is a clear configuration error', (_name, overrides, message) => {
  expect(() => temporalOptionsFromEnv(env(overrides))).toThrow(message);
});

test('an API key (Temporal Cloud) implies TLS with the system CAs', () => {
  const options = temporalOptionsFromEnv({
    TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
    TEMPORAL_API_KEY: 'k',
  });
  expect(options.tls).toBe(true);
  expect(connectionOptions(options)).toEqual({ address: 'ns.acct.tmprl.cloud:7233', tls: true, apiKey: 'k' });
});
