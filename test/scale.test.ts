/**
 * Scaling out: two, then four real worker processes (`tsx workers/main.ts`, as an operator runs
 * them) on one dev server and one task queue. The steps of one task spread across them. Each
 * worker may run only four model calls at once (BATON_MAX_CONCURRENT_ACTIVITIES), so sixteen
 * parallel steps cannot all land on one worker. Each worker's health endpoint answers 200.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../local/temporal';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { FIXTURE_CONFIG, uniqueId, useTestServer } from './helpers';
import { Processes, type WorkerEnv, type WorkerProcess } from '../bench/processes';

const STEPS = 16;
const ctx = useTestServer();
const processes = new Processes();
let standIn: StandIn;
let env: WorkerEnv;

beforeAll(async () => {
  // Long enough that the sixteen calls are in flight together.
  standIn = await startStandIn({ latencyMs: 1000 });
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-scale-'));
  const configDir = path.join(root, 'config');
  await fs.cp(FIXTURE_CONFIG, configDir, { recursive: true });
  const steps = Array.from(
    { length: STEPS },
    (_, i) => `    - { id: p${i + 1}, agent: researcher, question: Part ${i + 1}. }`,
  );
  await fs.writeFile(
    path.join(configDir, 'playbooks', 'wide.yaml'),
    [
      'id: wide',
      'description: Sixteen independent steps, no gates.',
      'agents: [researcher]',
      `limits: { maxSteps: ${STEPS}, maxDepth: 0, maxParallel: ${STEPS} }`,
      'fixedPlan:',
      '  rationale: All parts at once.',
      '  steps:',
      ...steps,
      '',
    ].join('\n'),
  );
  env = {
    TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS!,
    BATON_TASK_QUEUE: uniqueId('scale'),
    ANTHROPIC_BASE_URL: standIn.url,
    BATON_CONFIG_DIR: configDir,
    BATON_ARTIFACT_DIR: path.join(root, 'artifacts'),
    BATON_REPORT_DIR: path.join(root, 'reports'),
    BATON_MAX_CONCURRENT_ACTIVITIES: '4',
    // INFO: the worker's readiness line is an INFO log line. No spans: they are not what this measures.
    BATON_LOG_LEVEL: 'INFO',
    BATON_TRACES: 'off',
  };
});

afterAll(async () => {
  await processes.killAll();
  await standIn?.close();
});

async function startWorkers(count: number): Promise<WorkerProcess[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const port = await freePort();
      const worker = await processes.startWorker(`worker-${processes.all.length + 1}`, {
        ...env,
        BATON_HEALTH_PORT: String(port),
      });
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      expect([health.status, await health.json()]).toEqual([200, { state: 'RUNNING' }]);
      return worker;
    }),
  );
}

/** Which worker process ran each specialist step, from the identity on ActivityTaskStarted. */
async function stepsPerWorker(handle: WorkflowHandle): Promise<Map<string, number>> {
  const events = (await handle.fetchHistory()).events ?? [];
  const types = new Map<string, string>();
  const counts = new Map<string, number>();
  for (const e of events) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) types.set(String(e.eventId), scheduled.activityType?.name ?? '');
    const started = e.activityTaskStartedEventAttributes;
    if (started && types.get(String(started.scheduledEventId)) === 'runSpecialist') {
      const pid = Number(started.identity?.split('@')[0]);
      const worker = await processes.owning(pid);
      const label = worker?.label ?? `unknown pid ${pid}`;
      counts.set(label, (counts.get(label) ?? 0) + 1);
    }
  }
  return counts;
}

async function runTask(): Promise<Map<string, number>> {
  const handle = await ctx.client.workflow.start(researchTask, {
    taskQueue: env.BATON_TASK_QUEUE,
    workflowId: uniqueId('scale'),
    args: [{ question: 'Sixteen parts?', playbook: 'wide' }],
  });
  expect((await handle.result()).outcome).toBe('completed');
  return stepsPerWorker(handle);
}

test('the steps of one task spread across two worker processes, then across four', async () => {
  await startWorkers(2);
  const two = await runTask();
  expect([...two.keys()].sort()).toEqual(['worker-1', 'worker-2']);
  expect([...two.values()].reduce((a, b) => a + b)).toBe(STEPS);

  await startWorkers(2);
  const four = await runTask();
  expect([...four.keys()].sort()).toEqual(['worker-1', 'worker-2', 'worker-3', 'worker-4']);
  expect([...four.values()].reduce((a, b) => a + b)).toBe(STEPS);
}, 180_000);
