/**
 * Only reviewed config runs: a worker given an allow-list of config digests refuses to start on any
 * other config, tasks refuse to run with one, and `npm run config:check` says which digest it is.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../activities/config';
import { activityOptionsFromEnv, PROJECT_ROOT } from '../activities/options';
import { researchTask } from '../workflows';
import { createBatonWorker } from '../workers/worker';
import {
  FIXTURE_CONFIG,
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';

const ctx = useTestServer();
const TSX = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

let fixtureDigest: string;
beforeAll(async () => {
  fixtureDigest = (await loadConfig(FIXTURE_CONFIG)).digest;
});

describe('the allow-list from the environment', () => {
  test('digests separated by commas or spaces', () => {
    expect(activityOptionsFromEnv({ BATON_CONFIG_ALLOWLIST: `${A}, ${B}` }).configAllowlist).toEqual([A, B]);
    expect(activityOptionsFromEnv({ BATON_CONFIG_ALLOWLIST: `${A} ${B}` }).configAllowlist).toEqual([A, B]);
  });

  test('unset means any valid config', () => {
    expect(activityOptionsFromEnv({}).configAllowlist).toBeUndefined();
  });

  test('a file: one digest per line, comments and blank lines ignored', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'baton-allow-')), 'allowlist');
    await fs.writeFile(file, `# reviewed on main\n${A}\n\n${B}  # release 1.2\n`);
    expect(activityOptionsFromEnv({ BATON_CONFIG_ALLOWLIST_FILE: file }).configAllowlist).toEqual([A, B]);
  });

  test.each<[string, NodeJS.ProcessEnv, RegExp]>([
    [
      'a malformed digest',
      { BATON_CONFIG_ALLOWLIST: `${A},sha256:abc` },
      /"sha256:abc" \(BATON_CONFIG_ALLOWLIST\)/,
    ],
    ['both variables', { BATON_CONFIG_ALLOWLIST: A, BATON_CONFIG_ALLOWLIST_FILE: '/x' }, /not both/],
    ['an empty list', { BATON_CONFIG_ALLOWLIST: ' , ' }, /BATON_CONFIG_ALLOWLIST lists no digest/],
    [
      'a missing file',
      { BATON_CONFIG_ALLOWLIST_FILE: '/nonexistent/allow' },
      /\/nonexistent\/allow cannot be read/,
    ],
  ])('%s is refused with a message naming it', (_name, env, message) => {
    expect(() => activityOptionsFromEnv(env)).toThrow(message);
  });

  test('a bad line in a file is named by file and line number', async () => {
    const file = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'baton-allow-')), 'allowlist');
    await fs.writeFile(file, `${A}\nmain\n`);
    expect(() => activityOptionsFromEnv({ BATON_CONFIG_ALLOWLIST_FILE: file })).toThrow(`"main" (${file}:2)`);
  });
});

describe('npm run config:check', () => {
  const check = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(TSX, ['cli/config-check.ts', ...args], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, BATON_CONFIG_DIR: FIXTURE_CONFIG, ...env },
    });

  test('--digest prints the digest alone, the one workers compare', () => {
    const run = check(['--digest']);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${fixtureDigest}\n`);
  });

  test('fails when the config is valid but not on the allow-list', () => {
    const refused = check([], { BATON_CONFIG_ALLOWLIST: A });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain(
      `config digest ${fixtureDigest} is not on this worker's allow-list (${A})`,
    );
    expect(check([], { BATON_CONFIG_ALLOWLIST: `${A} ${fixtureDigest}` }).status).toBe(0);
  });
});

describe('a worker with an allow-list', () => {
  test('refuses to start on config whose digest is not on it, naming the digest', async () => {
    const activityOptions = { ...(await tempActivityOptions()), configAllowlist: [A] };
    const err = await createBatonWorker({
      connection: ctx.nativeConnection,
      namespace: 'default',
      taskQueue: uniqueId('allowlist'),
      activityOptions,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(
      `config digest ${fixtureDigest} is not on this worker's allow-list`,
    );
  });

  test('refuses tasks once the config on disk no longer matches, before any model call', async () => {
    // A copy of the fixture config, allowed as it is now, then edited under the running worker.
    const dir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'baton-allow-')), 'config');
    await fs.cp(FIXTURE_CONFIG, dir, { recursive: true });
    const options = { ...(await tempActivityOptions(dir)), configAllowlist: [fixtureDigest] };
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const start = () =>
        ctx.client.workflow.start(researchTask, {
          taskQueue,
          workflowId: uniqueId('allowlist'),
          args: [{ question: 'How do A and B compare?', playbook: 'gated' }],
        });
      const allowed = await start();
      await waitForStatus(allowed, (s) => s.phase === 'awaiting-plan-approval', 'the plan gate');
      expect(calls.plan).toHaveLength(1);

      const file = path.join(dir, 'playbooks', 'gated.yaml');
      await fs.writeFile(file, (await fs.readFile(file, 'utf8')).replace('maxSteps: 5', 'maxSteps: 50'));
      const refused = await start();
      const err = await refused.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      // The config snapshot is a local activity (v18): its failure is the task's, not wrapped in an
      // ActivityFailure as an activity's is.
      const failure = (err as WorkflowFailedError).cause as ApplicationFailure;
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure.type).toBe('ConfigNotAllowed');
      expect(failure.message).toContain(`is not on this worker's allow-list (${fixtureDigest})`);
      expect(calls.plan).toHaveLength(1); // the refused task asked no model anything
      await allowed.terminate('test done');
    });
  });
});
