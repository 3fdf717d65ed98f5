/**
 * Upgrades with real processes: tasks started on the previous release's worker are handed to the
 * current worker and complete, with no nondeterminism.
 *
 * The previous release is the commit test/releases.json names (moved on at each release:
 * docs/releases.md). Its code is checked out from git into a temporary folder and its worker started
 * as an operator would (`tsx workers/main.ts`), against the test server, with fixture config and
 * the stand-in model; then it is SIGKILLed and this checkout's worker started on the same task queue.
 * The current worker has none of the tasks in its cache, so it replays each history the previous
 * release wrote before it can go on: a change to the commands the workflow emits that is not behind
 * `patched()` fails that replay.
 *
 * Three tasks on the `gated` playbook (one approver per gate) are handed over at once, each at another
 * point: waiting at the plan gate, with steps and a child workflow in flight (their model calls cut
 * off by the kill and run again by the current worker), and waiting at the report gate. Every one must
 * end completed, and no history, children included, may hold a workflow task that failed on
 * nondeterminism (or on the code throwing during replay). A second test shows that check can fail.
 *
 * Set BATON_UPGRADE_TIMELINE=1 to print the timeline even when the test passes.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { Processes, type WorkerEnv } from '../bench/processes';
import {
  approve,
  status as statusQuery,
  type Gate,
  type ResearchTaskResult,
  type TaskStatus,
} from '../contract/messages';
import { startStandIn, type StandIn } from '../standin/server';
import { workerTracing } from '../workers/telemetry';
import { researchTask } from '../workflows';
import {
  FIXTURE_CONFIG,
  fakeModelActivities,
  pollUntil,
  readUntil,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
} from './helpers';
import { exportCommit, PREVIOUS_RELEASE, replayBreaks, type ReplayBreak } from './previous-release';

/** Model latency: long enough for calls to be in flight when the previous worker is killed. */
const LATENCY_MS = 1000;
/** Heartbeat timeout of the agents: how soon a call cut off by the kill is run again. */
const HEARTBEAT = '3s';
const APPROVER = 'alice';
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

const QUESTIONS = {
  // Simple facts: a one-step plan, so the tasks handed over at a gate finish quickly.
  planGate: 'What is the tallest mountain in Africa?',
  reportGate: 'Who was the first person to walk on the Moon?',
  // A focused question: three gathering steps, the first decomposed into a child task, then two more.
  midExecution: 'How do heat pumps cope with very cold winters?',
};

/**
 * The fixture config both releases run on: its agents (with the heartbeat timeout lowered to
 * {@link HEARTBEAT}), approvers and the `gated` playbook only, so that fixture playbooks added for
 * later features, which the previous release may not know, stay out of it.
 */
async function upgradeConfig(root: string): Promise<string> {
  const dir = path.join(root, 'config');
  await fs.mkdir(path.join(dir, 'playbooks'), { recursive: true });
  for (const file of ['approvers.yaml', 'playbooks/gated.yaml']) {
    await fs.copyFile(path.join(FIXTURE_CONFIG, file), path.join(dir, file));
  }
  const agents = YAML.parse(await fs.readFile(path.join(FIXTURE_CONFIG, 'agents.yaml'), 'utf8')) as {
    agents: Record<string, unknown>[];
  };
  for (const agent of agents.agents) agent.timeouts = { heartbeat: HEARTBEAT };
  await fs.writeFile(path.join(dir, 'agents.yaml'), YAML.stringify(agents));
  return dir;
}

/** The task's history and its children's, recursively, each with its workflow id. */
async function historiesOf(
  client: Client,
  workflowId: string,
): Promise<{ workflowId: string; history: temporal.api.history.v1.IHistory }[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const children = (history.events ?? []).flatMap((e) => {
    const id = e.childWorkflowExecutionStartedEventAttributes?.workflowExecution?.workflowId;
    return id ? [id] : [];
  });
  const theirs = await Promise.all(children.map((id) => historiesOf(client, id)));
  return [{ workflowId, history }, ...theirs.flat()];
}

/** Replay breaks anywhere in the task's histories, children included. */
async function breaksOf(
  client: Client,
  workflowId: string,
): Promise<(ReplayBreak & { workflowId: string })[]> {
  const histories = await historiesOf(client, workflowId);
  return histories.flatMap(({ workflowId: id, history }) =>
    replayBreaks(history).map((b) => ({ workflowId: id, ...b })),
  );
}

class ReplayBroke extends Error {}

/**
 * Reads `read()` until `predicate` holds. Read errors (no worker to answer a query yet) count as
 * "not yet"; a replay break in the task's histories fails at once, since waiting could only time out.
 */
const until = <T>(
  client: Client,
  handle: WorkflowHandle,
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<T> =>
  readUntil(read, predicate, what, timeoutMs, async () => {
    const breaks = await breaksOf(client, handle.workflowId);
    if (breaks.length > 0) {
      throw new ReplayBroke(`${handle.workflowId} does not replay:\n${JSON.stringify(breaks, null, 2)}`);
    }
  });

/**
 * The status query, bounded: right after the kill a query is offered to the dead worker's sticky
 * queue first, and the server falls back to the task queue after the sticky timeout (10 s).
 */
const queryStatus = (client: Client, handle: WorkflowHandle): Promise<TaskStatus> =>
  client.withDeadline(Date.now() + 15_000, () => handle.query(statusQuery));

const waitForTask = (
  client: Client,
  handle: WorkflowHandle,
  predicate: (s: TaskStatus) => boolean,
  what: string,
): Promise<TaskStatus> => until(client, handle, () => queryStatus(client, handle), predicate, what);

const atGate = (gate: Gate) => (s: TaskStatus) => s.pendingGate?.gate === gate;

const approveGate = (handle: WorkflowHandle, gate: Gate): Promise<void> =>
  handle.signal(approve, { by: APPROVER, gate });

/** Which worker process each workflow task of `history` was completed by, in order, repeats folded. */
function completedBy(history: temporal.api.history.v1.IHistory, workers: Map<number, string>): string[] {
  const labels = (history.events ?? []).flatMap((e) => {
    const identity = e.workflowTaskCompletedEventAttributes?.identity;
    return identity ? [workers.get(Number(identity.split('@')[0])) ?? identity] : [];
  });
  return labels.filter((label, i) => label !== labels[i - 1]);
}

const ctx = useTestServer();
let root: string;
let release: string | undefined;
let configDir: string;
let standIn: StandIn;
let lastCallAt = 0;
const procs = new Processes();
let passed = false;
const t0 = Date.now();
const timeline: string[] = [];
const mark = (what: string): void => void timeline.push(`+${((Date.now() - t0) / 1000).toFixed(1)}s ${what}`);

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'baton-upgrade-'));
  configDir = await upgradeConfig(root);
  standIn = await startStandIn({
    latencyMs: LATENCY_MS,
    respond: () => {
      lastCallAt = Date.now();
      return undefined;
    },
  });
  release = (await exportCommit(PREVIOUS_RELEASE)).dir;
  mark(`previous release checked out in ${release}`);
}, 60_000);

afterAll(async () => {
  await procs.killAll();
  await standIn?.close();
  const summary = `upgrade test (previous release ${PREVIOUS_RELEASE}), timeline:\n  ${timeline.join('\n  ')}`;
  if (!passed) console.error(`${summary}\nfiles in ${root}\n${procs.output()}`);
  else {
    if (process.env.BATON_UPGRADE_TIMELINE) console.log(summary);
    await fs.rm(root, { recursive: true, force: true });
  }
  if (release) await fs.rm(release, { recursive: true, force: true });
}, 30_000);

test('tasks started on the previous release, handed to the current worker at the plan gate, mid-execution and at the report gate, complete with no nondeterminism', async () => {
  const { client } = ctx;
  const taskQueue = uniqueId('upgrade');
  const env: WorkerEnv = {
    TEMPORAL_ADDRESS: process.env.BATON_TEST_TEMPORAL_ADDRESS!,
    BATON_TASK_QUEUE: taskQueue,
    ANTHROPIC_BASE_URL: standIn.url,
    ANTHROPIC_API_KEY: 'sk-test-upgrade',
    BATON_CONFIG_DIR: configDir,
    // Shared, as a deployment's artifact store is: steps the previous release ran feed the report.
    BATON_ARTIFACT_DIR: path.join(root, 'artifacts'),
    BATON_REPORT_DIR: path.join(root, 'reports'),
  };
  const previous = await procs.startWorker(`previous ${PREVIOUS_RELEASE.slice(0, 7)}`, env, release);
  mark('previous worker ready');
  const start = (name: keyof typeof QUESTIONS): Promise<WorkflowHandle<typeof researchTask>> =>
    client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId(`upgrade-${name}`),
      args: [{ question: QUESTIONS[name], playbook: 'gated' }],
    });
  const [planGate, midExecution, reportGate] = await Promise.all([
    start('planGate'),
    start('midExecution'),
    start('reportGate'),
  ]);
  const tasks = { planGate, midExecution, reportGate };
  await Promise.all(
    Object.values(tasks).map((h) =>
      waitForTask(client, h, atGate('plan'), `${h.workflowId} at the plan gate`),
    ),
  );
  mark('three tasks at the plan gate');

  // On the previous release: one task to its report gate, then another into execution.
  await approveGate(reportGate, 'plan');
  await waitForTask(client, reportGate, atGate('report'), 'the report gate on the previous release');
  mark('reportGate at the report gate');
  await approveGate(midExecution, 'plan');
  // Steps running, a child task among them, and a model call that reached the stand-in moments ago
  // (its answer still far off): the kill cuts it off.
  const before = await waitForTask(
    client,
    midExecution,
    (s) =>
      s.steps.some((x) => x.state === 'running' && !x.childWorkflowId) &&
      s.steps.some((x) => x.state === 'running' && x.childWorkflowId) &&
      Date.now() - lastCallAt < LATENCY_MS / 2,
    'steps and a child task in flight on the previous release',
  );
  const previousPids = await previous.livePids();
  expect((await previous.kill()).signal).toBe('SIGKILL');
  const killedAt = Date.now();
  mark('previous worker killed with steps in flight');

  // What the server holds as started and not finished is cut off: it must run again, on the new worker.
  const childId = before.steps.find((x) => x.state === 'running' && x.childWorkflowId)!.childWorkflowId!;
  const started = await Promise.all(
    [midExecution.workflowId, childId].map(async (id) => {
      const { raw } = await client.workflow.getHandle(id).describe();
      return (raw.pendingActivities ?? []).filter((p) => p.state === STARTED).length;
    }),
  );
  expect(started.reduce((a, b) => a + b)).toBeGreaterThan(0);

  const current = await procs.startWorker('current', env);
  mark('current worker ready');
  await approveGate(planGate, 'plan');
  await approveGate(reportGate, 'report');
  for (const handle of [planGate, midExecution]) {
    await waitForTask(client, handle, atGate('report'), `${handle.workflowId} at the report gate`);
    mark(`${handle.workflowId} at the report gate`);
    await approveGate(handle, 'report');
  }

  const workers = new Map<number, string>([
    ...previousPids.map((pid): [number, string] => [pid, 'previous']),
    ...(await current.livePids()).map((pid): [number, string] => [pid, 'current']),
  ]);
  for (const [name, handle] of Object.entries(tasks)) {
    const closed = await until(
      client,
      handle,
      () => handle.describe(),
      (d) => d.status.name !== 'RUNNING',
      `${name} to close`,
    );
    mark(`${name} closed: ${closed.status.name}`);
    expect([name, closed.status.name]).toEqual([name, 'COMPLETED']);
    const result: ResearchTaskResult = await handle.result();
    expect([name, result.outcome]).toEqual([name, 'completed']);
    // No replay break anywhere, children included.
    expect([name, await breaksOf(client, handle.workflowId)]).toEqual([name, []]);
    // Handed over: the previous release completed the first workflow tasks, the current one the rest.
    const history = await handle.fetchHistory();
    expect([name, completedBy(history, workers)]).toEqual([name, ['previous', 'current']]);
  }

  // v18 (`bookkeeping-local-activities`): a task started before it keeps activities for the
  // bookkeeping its history holds, and takes local activities after. The previous release loaded the
  // config and published the draft as activities; the current worker published the final report as
  // a local activity, after the marker.
  const json = (p: temporal.api.common.v1.IPayload | undefined): unknown =>
    JSON.parse(Buffer.from(p?.data ?? new Uint8Array()).toString('utf8'));
  const bookkeeping = ((await reportGate.fetchHistory()).events ?? []).flatMap((e) => {
    const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
    if (name === 'loadConfigSnapshot' || name === 'publishReport') return [`activity ${name}`];
    const m = e.markerRecordedEventAttributes;
    if (m?.markerName === 'core_patch') {
      const { id } = json(m.details?.['patch-data']?.payloads?.[0]) as { id: string };
      return id === 'bookkeeping-local-activities' ? [`marker ${id}`] : [];
    }
    if (m?.markerName !== 'core_local_activity') return [];
    return [`local ${(json(m.details?.data?.payloads?.[0]) as { activity_type: string }).activity_type}`];
  });
  expect(bookkeeping).toEqual([
    'activity loadConfigSnapshot',
    'activity publishReport',
    'marker bookkeeping-local-activities',
    'local publishReport',
  ]);

  // The calls cut off by the kill ran again, on the current worker.
  const histories = await historiesOf(client, midExecution.workflowId);
  const retried = histories.flatMap(({ history }) =>
    (history.events ?? []).flatMap((e) => {
      const a = e.activityTaskStartedEventAttributes;
      return a && (a.attempt ?? 1) > 1 && tsToMs(e.eventTime) > killedAt ? [a.identity ?? ''] : [];
    }),
  );
  expect(retried.length).toBeGreaterThan(0);
  expect(retried.map((identity) => workers.get(Number(identity.split('@')[0])))).toEqual(
    retried.map(() => 'current'),
  );
  expect(current.output()).not.toMatch(/nondetermin/i);
  passed = true;
}, 150_000);

test('the check can fail: a task continued by incompatible workflow code shows a nondeterminism break', async () => {
  const options = await tempActivityOptions();
  const { activities } = fakeModelActivities(options);
  const taskQueue = uniqueId('upgrade-incompatible');
  // No workflow cache: the incompatible worker must replay the history the first one wrote.
  const common = { connection: ctx.nativeConnection, taskQueue, activities, maxCachedWorkflows: 0 };
  const released = await Worker.create({
    ...common,
    workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! },
    // The bundle's tracing interceptors call a sink every Baton worker registers (a no-op here).
    ...workerTracing(undefined, true),
  });
  const handle = await released.runUntil(async () => {
    const h = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('upgrade-incompatible'),
      args: [{ question: 'Q?', playbook: 'gated' }],
    });
    await waitForStatus(h, atGate('plan'), 'the plan gate');
    return h;
  });
  const incompatible = await Worker.create({
    ...common,
    workflowsPath: require.resolve('./fixtures/incompatible/workflows'),
  });
  try {
    const breaks = await incompatible.runUntil(async () => {
      await approveGate(handle, 'plan');
      return pollUntil(
        () => breaksOf(ctx.client, handle.workflowId),
        (b) => b.length > 0,
        'a replay break in the history',
      );
    });
    expect(breaks[0]!.cause).toBe('WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR');
    await expect(
      until(
        ctx.client,
        handle,
        () => handle.describe(),
        () => true,
        'the check to throw',
      ),
    ).rejects.toBeInstanceOf(ReplayBroke);
  } finally {
    await handle.terminate('the incompatible worker cannot continue it');
  }
}, 60_000);
