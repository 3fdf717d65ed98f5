/**
 * Only Baton's workflows on Baton's task queue may call Baton's activities (issue 14: someone with
 * namespace write access; workers/callers.ts). An attacker runs workflow code of their own
 * (test/fixtures/attacker) on a worker and task queue of their own, and schedules Baton's activities
 * on Baton's queue, where a real Baton worker (withWorker: the real activities, against the loopback
 * stand-in model) takes them:
 *   - the specialist activity with a made-up agent (its own system prompt and model) is refused with
 *     `CallerRefused` before any model call: the stand-in gets no request, the store gets nothing;
 *   - `publishReport` with a made-up provenance (of a task that never ran) is refused: nothing is
 *     published, so nothing is signed with the worker's publisher key;
 *   - the same workflow registered under a Baton type name (`researchTask`) is refused too: what
 *     counts is the queue it runs on, which only Baton workers poll.
 * And a describe that fails leaves the activity unrun with a retryable failure, not a refusal. A
 * local activity (bookkeeping since v18) is run without a describe: only a workflow this very
 * worker runs can schedule one; the same activity scheduled from another queue is still refused.
 * Legitimate tasks (top-level, decomposed, batched) go through the same check in every other test
 * that runs a worker with withWorker.
 */
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { promises as fs } from 'node:fs';
import { createActivities } from '../activities';
import { putArtifact } from '../activities/artifacts';
import type { ActivityOptions } from '../activities/options';
import { openStores } from '../activities/store';
import type { StepInput, PublishInput } from '../contract/activities';
import { FailureTypes } from '../contract/failures';
import type { Provenance } from '../contract/messages';
import { startStandIn, type StandIn } from '../standin/server';
import { callerCheck } from '../workers/callers';
import type { AttackInput } from './fixtures/attacker/workflows';
import { tempActivityOptions, uniqueId, useTestServer, withWorker } from './helpers';

const ctx = useTestServer();
let standIn: StandIn;
let attackerBundle: WorkflowBundle;

beforeAll(async () => {
  standIn = await startStandIn();
  attackerBundle = await bundleWorkflowCode({
    workflowsPath: require.resolve('./fixtures/attacker/workflows'),
    logger: { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} },
  });
});
afterAll(async () => {
  await standIn?.close();
});
beforeEach(() => standIn.resetStats());

async function options(): Promise<ActivityOptions> {
  return { ...(await tempActivityOptions()), baseURL: standIn.url };
}

interface Attack {
  /** Why the attacker's workflow failed. */
  error: unknown;
  workflowId: string;
  attackerQueue: string;
  batonQueue: string;
}

/**
 * Runs the attacker's workflow (as `workflowType`) on a queue of its own, calling `activity` with
 * `input` on the queue of a Baton worker with `opts`; returns how it ended.
 */
async function attack(
  opts: ActivityOptions,
  activity: string,
  input: unknown,
  workflowType = 'attacker',
): Promise<Attack> {
  return withWorker(ctx, createActivities(opts), async (batonQueue) => {
    const attackerQueue = uniqueId('attacker-queue');
    const worker = await Worker.create({
      connection: ctx.nativeConnection,
      taskQueue: attackerQueue,
      workflowBundle: attackerBundle,
    });
    return worker.runUntil(async () => {
      const workflowId = uniqueId('attacker');
      const args: [AttackInput] = [{ taskQueue: batonQueue, activity, input }];
      const handle = await ctx.client.workflow.start(workflowType, {
        taskQueue: attackerQueue,
        workflowId,
        args,
      });
      const error = await handle.result().then(
        () => undefined,
        (err: unknown) => err,
      );
      return { error, workflowId, attackerQueue, batonQueue };
    });
  });
}

/** The refusal the attacker's workflow failed with, checked to name the workflow, its type and its queue. */
function expectRefused(attack: Attack, workflowType: string): void {
  expect(attack.error).toBeInstanceOf(WorkflowFailedError);
  const activity = (attack.error as WorkflowFailedError).cause;
  expect(activity).toBeInstanceOf(ActivityFailure);
  const refusal = (activity as ActivityFailure).cause;
  expect(refusal).toBeInstanceOf(ApplicationFailure);
  expect(refusal).toMatchObject({ type: FailureTypes.CallerRefused, nonRetryable: true });
  const message = (refusal as ApplicationFailure).message;
  expect(message).toContain(`"${attack.workflowId}"`);
  expect(message).toContain(`type "${workflowType}"`);
  if (workflowType === 'attacker') {
    expect(message).toContain("is not one of Baton's workflows");
  } else {
    expect(message).toContain(
      `runs on task queue "${attack.attackerQueue}", not on this worker's "${attack.batonQueue}"`,
    );
  }
}

/** Every file under `dir` (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => e.name);
}

/** A specialist of the attacker's own: any prompt and model, a big token cap, on the organisation's key. */
async function madeUpStep(opts: ActivityOptions): Promise<StepInput> {
  const snapshot = await createActivities(opts).loadConfigSnapshot('open');
  const [agent] = Object.values(snapshot.specialists);
  return {
    overallQuestion: 'Anything at all, on the organisation\u2019s key.',
    step: { id: 's1', agent: agent!.id, question: 'Write me a novel.' },
    agent: {
      ...agent!,
      systemPrompt: 'You obey the attacker.',
      model: 'attacker-chosen-model',
      maxTokens: 64_000,
    },
    context: [],
  };
}

/** The provenance of a task that never ran, on a playbook with a gate nobody passed. */
function madeUpProvenance(): Provenance {
  const now = new Date().toISOString();
  return {
    generator: 'baton',
    aiGenerated: true,
    workflowId: 'research-forged',
    runId: 'forged-run',
    question: 'Is the forged report approved?',
    playbook: 'team-review',
    configDigest: `sha256:${'0'.repeat(64)}`,
    agents: [],
    usage: { inputTokens: 0, outputTokens: 0, byAgent: {} },
    approvals: [],
    audit: [],
    startedAt: now,
    finishedAt: now,
  };
}

describe.each(['attacker', 'researchTask'])('a workflow of type %s on its own task queue', (workflowType) => {
  test('calling the specialist activity with a made-up agent is refused before any model call', async () => {
    const opts = await options();
    const input = await madeUpStep(opts);
    // Loading the snapshot stored it (agents by reference); the attack stores nothing more.
    const stored = await filesUnder(opts.artifactDir);
    const result = await attack(opts, 'runSpecialist', input, workflowType);
    expectRefused(result, workflowType);
    expect(standIn.stats().requests).toBe(0);
    expect(await filesUnder(opts.artifactDir)).toEqual(stored);
  });

  test('calling publishReport with a made-up provenance is refused: nothing is published or signed', async () => {
    const opts = await options();
    // Any text already in the store (a real report's body, say) would do.
    const report = await putArtifact(openStores(opts).artifacts, '# A report\n\nNobody approved this.');
    const input: PublishInput = { report, provenance: madeUpProvenance(), kind: 'final' };
    const result = await attack(opts, 'publishReport', input, workflowType);
    expectRefused(result, workflowType);
    expect(await filesUnder(opts.reportDir)).toEqual([]);
    expect(await filesUnder(opts.artifactDir)).toHaveLength(1);
  });
});

/**
 * A worker on its own queue running the fixture's workflows, whose `noop` activity counts its runs;
 * its callers are checked through `describer`.
 */
async function workerChecking(describer: NativeConnection) {
  const taskQueue = uniqueId('callers');
  const runs = { count: 0 };
  const worker = await Worker.create({
    connection: ctx.nativeConnection,
    taskQueue,
    workflowBundle: attackerBundle,
    activities: {
      noop: () => {
        runs.count++;
        return Promise.resolve('ran');
      },
    },
    interceptors: { activity: [callerCheck({ connection: describer, taskQueue })] },
  });
  return { worker, taskQueue, runs };
}

/** Runs the fixture's `researchTask` on `taskQueue`: its result, or the error it failed with. */
const run = (taskQueue: string, input: AttackInput) =>
  ctx.client.workflow
    .start('researchTask', { taskQueue, workflowId: uniqueId('legit'), args: [input] })
    .then((handle) => handle.result())
    .then(
      (result: unknown) => ({ result }),
      (error: unknown) => ({ error }),
    );

test('a describe that fails is a retryable failure saying what could not be checked, not a refusal', async () => {
  // The check's connection is closed, so its describe fails at once (a server that cannot be
  // reached ends the same way, after the client's own retries). The worker polls on its own.
  const describer = await NativeConnection.connect({ address: process.env.BATON_TEST_TEMPORAL_ADDRESS! });
  await describer.close();
  // A Baton workflow type on the worker's own queue: a caller the check would let through.
  const { worker, taskQueue, runs } = await workerChecking(describer);
  const outcome = await worker.runUntil(() =>
    run(taskQueue, { taskQueue, activity: 'noop', input: undefined }),
  );
  expect(runs.count).toBe(0);
  // The fixture allows one attempt, so the first failure ends the workflow: retryable, of no Baton type.
  const error = (outcome as { error: WorkflowFailedError }).error;
  const failure = (error.cause as ActivityFailure).cause as ApplicationFailure;
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure.nonRetryable).toBe(false);
  expect(failure.type).not.toBe(FailureTypes.CallerRefused);
  expect(failure.message).toMatch(
    /^cannot check the calling workflow "legit-.*" \(run ".*", type "researchTask"\) before running activity noop: ./,
  );
});

describe('local activities (bookkeeping since v18)', () => {
  test('a local activity runs without a describe: its workflow runs on this very worker', async () => {
    // The check's connection is closed: a describe would fail (the test above), so the activity
    // running shows none was made for it.
    const describer = await NativeConnection.connect({ address: process.env.BATON_TEST_TEMPORAL_ADDRESS! });
    await describer.close();
    const { worker, taskQueue, runs } = await workerChecking(describer);
    const outcome = await worker.runUntil(() =>
      run(taskQueue, { taskQueue, activity: 'noop', input: undefined, local: true }),
    );
    expect(outcome).toEqual({ result: 'ran' });
    expect(runs.count).toBe(1);
  });

  test('beside a local activity that runs, the same activity scheduled from another queue is refused', async () => {
    const { worker, taskQueue, runs } = await workerChecking(ctx.nativeConnection);
    const attackerQueue = uniqueId('attacker-queue');
    const attacker = await Worker.create({
      connection: ctx.nativeConnection,
      taskQueue: attackerQueue,
      workflowBundle: attackerBundle,
    });
    const [local, forged] = await worker.runUntil(
      attacker.runUntil(async () => {
        const local = await run(taskQueue, { taskQueue, activity: 'noop', input: undefined, local: true });
        const forged = await run(attackerQueue, { taskQueue, activity: 'noop', input: undefined });
        return [local, forged] as const;
      }),
    );
    expect(local).toEqual({ result: 'ran' });
    expect(runs.count).toBe(1);
    const refusal = ((forged as { error: WorkflowFailedError }).error.cause as ActivityFailure).cause;
    expect(refusal).toMatchObject({ type: FailureTypes.CallerRefused, nonRetryable: true });
    expect((refusal as ApplicationFailure).message).toContain(
      `runs on task queue "${attackerQueue}", not on this worker's "${taskQueue}"`,
    );
  });
});
