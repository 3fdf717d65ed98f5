/**
 * Small histories (issue 15, item 6), on the real dev server with real workers: since v12
 * (`agents-by-reference`) model activities are given their agent by id and the digest of the
 * stored config snapshot, not the agent's whole config, and synthesis is given each specialist
 * step's sources by reference. Everything is read from the tasks' real histories; the history of a
 * fixed plan of 100 steps is measured against the same task run by the workflow code before v12.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createActivities } from '../activities';
import { getArtifact } from '../activities/artifacts';
import type { ActivityOptions } from '../activities/options';
import { openStores } from '../activities/store';
import type { ConfigSnapshot, Plan } from '../config/schema';
import {
  snapshotRefOf,
  type Activities,
  type GivenAgent,
  type StepInput,
  type StepResult,
  type SynthesisInput,
  type SynthesisResult,
} from '../contract/activities';
import { FailureTypes } from '../contract/failures';
import { status as statusQuery } from '../contract/messages';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { exportCommit } from './previous-release';
import {
  DEFAULT_PLAN,
  fakeModelActivities,
  FIXTURE_CONFIG,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  withWorker,
} from './helpers';

const ctx = useTestServer();
const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const MODEL_ACTIVITIES = ['planTask', 'runSpecialist', 'summarizeSteps', 'synthesizeReport'];

let standIn: StandIn | undefined;
afterEach(async () => {
  await standIn?.close();
  standIn = undefined;
});

/** n independent steps of the given agents, in turn. */
const planOf = (n: number, agents: string[]): Plan => ({
  rationale: 'Many angles.',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i + 1}`,
    agent: agents[i % agents.length]!,
    question: `Angle ${i + 1} of the question.`,
    dependsOn: [],
    decompose: false,
  })),
});

/**
 * A copy of a config folder (the fixtures' or the shipped one) with a playbook `fixed-n` fixing
 * `plan`, no gates, and options pointing at it and at a fresh stand-in.
 */
async function configWith(plan: Plan, from = FIXTURE_CONFIG): Promise<ActivityOptions> {
  standIn = await startStandIn();
  const options = await tempActivityOptions();
  const configDir = path.join(path.dirname(options.artifactDir), 'config');
  await fs.cp(from, configDir, { recursive: true });
  const agents = [...new Set(plan.steps.map((s) => s.agent))];
  await fs.writeFile(
    path.join(configDir, 'playbooks', 'fixed-n.yaml'),
    [
      'id: fixed-n',
      'description: A fixed plan, no gates.',
      `agents: [${agents.join(', ')}]`,
      `limits: { maxSteps: ${plan.steps.length}, maxDepth: 0, maxParallel: 16 }`,
      `fixedPlan: ${JSON.stringify(plan)}`,
      '',
    ].join('\n'),
  );
  return { ...options, configDir, baseURL: standIn.url };
}

interface Scheduled {
  name: string;
  /** The input (the one argument) as the history holds it: its JSON text and the value. */
  text: string;
  input: unknown;
  /** The result, when the activity completed. */
  result?: unknown;
}

const payloadText = (p: temporal.api.common.v1.IPayload | undefined): string =>
  Buffer.from(p?.data ?? new Uint8Array()).toString('utf8');

/** Every activity a workflow scheduled, with its input and result as its history holds them. */
async function scheduledIn(handle: WorkflowHandle): Promise<Scheduled[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  const results = new Map(
    events.flatMap((e) => {
      const done = e.activityTaskCompletedEventAttributes;
      return done
        ? [[Number(done.scheduledEventId), JSON.parse(payloadText(done.result?.payloads?.[0]))]]
        : [];
    }),
  );
  return events.flatMap((e) => {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (!scheduled) return [];
    const text = payloadText(scheduled.input?.payloads?.[0]);
    const result: unknown = results.get(Number(e.eventId));
    return [{ name: scheduled.activityType!.name!, text, input: JSON.parse(text), result }];
  });
}

/** The ids of the patches a history recorded. */
async function patchesOf(handle: WorkflowHandle): Promise<string[]> {
  const events = (await handle.fetchHistory()).events ?? [];
  return events.flatMap(({ markerRecordedEventAttributes: m }) =>
    m?.markerName === 'core_patch'
      ? [(JSON.parse(payloadText(m.details?.['patch-data']?.payloads?.[0])) as { id: string }).id]
      : [],
  );
}

/**
 * The config snapshot a workflow runs with, as its history holds it: a task's is the result of its
 * `loadConfigSnapshot` (a local activity since v18: its marker), a child's is in its input.
 */
async function snapshotIn(handle: WorkflowHandle): Promise<ConfigSnapshot> {
  const events = (await handle.fetchHistory()).events ?? [];
  for (const e of events) {
    const m = e.markerRecordedEventAttributes;
    if (m?.markerName !== 'core_local_activity') continue;
    const data = JSON.parse(payloadText(m.details?.data?.payloads?.[0])) as { activity_type: string };
    if (data.activity_type === 'loadConfigSnapshot')
      return JSON.parse(payloadText(m.details?.result?.payloads?.[0])) as ConfigSnapshot;
  }
  const input = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return (JSON.parse(payloadText(input)) as { config: ConfigSnapshot }).config;
}

/** The agent a model activity's input names (`lead`, or a step's `agent`). */
const agentIn = (s: Scheduled): GivenAgent =>
  s.name === 'runSpecialist' ? (s.input as StepInput).agent : (s.input as { lead: GivenAgent }).lead;

/** Checks that no model activity a task scheduled carries an agent's config, only references to its stored snapshot. */
async function expectAgentsByReference(
  handle: WorkflowHandle,
  options: ActivityOptions,
): Promise<Scheduled[]> {
  const scheduled = await scheduledIn(handle);
  const loaded = await snapshotIn(handle);
  const ref = snapshotRefOf(loaded);
  // The snapshot the activities resolve is in the store under that name, as it was loaded.
  expect(JSON.parse(await getArtifact(openStores(options).artifacts, ref))).toEqual(loaded);
  const agents = [loaded.lead, ...Object.values(loaded.specialists)];
  const calls = scheduled.filter((s) => MODEL_ACTIVITIES.includes(s.name));
  expect(calls.length).toBeGreaterThan(0);
  for (const call of calls) {
    for (const agent of agents)
      expect([call.name, call.text]).not.toEqual([call.name, expect.stringContaining(agent.systemPrompt)]);
    expect([call.name, call.text]).not.toEqual([
      call.name,
      expect.stringMatching(/"systemPrompt"|"timeouts"|"retry"/),
    ]);
    const given = agentIn(call);
    expect([call.name, given]).toEqual([call.name, { id: expect.any(String), snapshot: ref }]);
  }
  return scheduled;
}

const synthesisSteps = (scheduled: Scheduled[]) =>
  scheduled
    .filter((s) => s.name === 'synthesizeReport' || s.name === 'summarizeSteps')
    .flatMap((s) => (s.input as SynthesisInput).steps);

test('a task gives model activities its agents by reference and synthesis its sources by reference; the report cites them', async () => {
  const options = await configWith(planOf(3, ['researcher', 'analyst']));
  await withWorker(ctx, createActivities(options), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('small'),
      args: [{ question: 'What is everything made of?', playbook: 'fixed-n' }],
    });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(await patchesOf(handle)).toContain('agents-by-reference');

    const scheduled = await expectAgentsByReference(handle, options);
    expect(scheduled.filter((s) => s.name === 'runSpecialist')).toHaveLength(3);
    // Synthesis reads each step's sources from the store: none is inline.
    const steps = synthesisSteps(scheduled);
    expect(steps.map((s) => s.id)).toEqual(['s1', 's2', 's3']);
    for (const step of steps) {
      expect(step).not.toHaveProperty('sources');
      expect(step.sourcesRef).toEqual({ id: expect.stringMatching(/^sha256:/), bytes: expect.any(Number) });
    }
    // The step's result keeps its bounded sources inline, for status, inbox and audit.
    const results = scheduled.filter((s) => s.name === 'runSpecialist').map((s) => s.result as StepResult);
    for (const r of results) expect(r.sources.length).toBeGreaterThan(0);

    // The synthesized report's references list each step's sources as its status shows them (the
    // citation pass then keeps only those a tool retrieved: test/citations.test.ts).
    const status = await handle.query(statusQuery);
    const synthesized = scheduled.find((s) => s.name === 'synthesizeReport')!.result as SynthesisResult;
    const report = await getArtifact(openStores(options).artifacts, synthesized.report.id);
    const references = report.split('## References')[1]!;
    for (const step of status.steps) {
      expect(step.sources!.length).toBeGreaterThan(0);
      const line = references.split('\n- ').find((l) => l.includes(`[step:${step.id}]`));
      expect(line).toBeDefined();
      for (const source of step.sources!) expect(line).toContain(`[${source.title}](${source.url})`);
    }
  });
}, 120_000);

test("a decomposed step's child resolves the snapshot it checked; the parent's synthesis gets that step's sources inline", async () => {
  const plan = {
    ...DEFAULT_PLAN,
    steps: DEFAULT_PLAN.steps.map((s) => (s.id === 's1' ? { ...s, decompose: true } : s)),
  };
  const options = await tempActivityOptions();
  const { activities } = fakeModelActivities(options, {
    plan: (input) => ({
      valid: true,
      plan: input.limits.depth === 0 ? plan : DEFAULT_PLAN,
      usage: { inputTokens: 10, outputTokens: 5 },
      model: input.lead.model,
    }),
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const workflowId = uniqueId('small-decomposed');
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId,
      args: [{ question: 'What is everything made of?', playbook: 'open' }],
    });
    expect((await handle.result()).outcome).toBe('completed');
    const parent = await expectAgentsByReference(handle, options);
    const child = ctx.client.workflow.getHandle(`${workflowId}/step-s1`);
    expect(await patchesOf(child)).toContain('agents-by-reference');
    await expectAgentsByReference(child, options);
    // s1 is the child's sub-report: its sources come inline; s2 and s3 are specialists' steps.
    const steps = synthesisSteps(parent);
    expect(steps.map((s) => [s.id, 'sources' in s, 'sourcesRef' in s])).toEqual([
      ['s1', true, false],
      ['s2', false, true],
      ['s3', false, true],
    ]);
  });
}, 120_000);

describe('a reference that cannot be resolved fails for good, naming the snapshot and the agent', () => {
  const env = new MockActivityEnvironment();
  const loadSnapshot = async (activities: Activities): Promise<ConfigSnapshot> =>
    env.run<[string], ConfigSnapshot, Activities['loadConfigSnapshot']>(
      activities.loadConfigSnapshot.bind(activities),
      'open',
    );
  const step = (agent: GivenAgent): StepInput => ({
    overallQuestion: 'Q?',
    step: { id: 's1', agent: 'researcher', question: 'Gather.' },
    agent,
    context: [],
  });
  const runStep = (activities: Activities, input: StepInput) =>
    env.run<[StepInput], StepResult, Activities['runSpecialist']>(
      activities.runSpecialist.bind(activities),
      input,
    );

  test('an unknown snapshot, an agent the snapshot does not have', async () => {
    const options = await tempActivityOptions();
    const activities = createActivities(options);
    const unknown = `sha256:${'0'.repeat(64)}`;
    await expect(runStep(activities, step({ id: 'researcher', snapshot: unknown }))).rejects.toMatchObject({
      nonRetryable: true,
      type: FailureTypes.ArtifactMissing,
      message: expect.stringMatching(
        new RegExp(
          `agent "researcher" .*config snapshot ${unknown}, which cannot be read: .*missing from the store`,
        ),
      ),
    });
    const ref = snapshotRefOf(await loadSnapshot(activities));
    await expect(runStep(activities, step({ id: 'lead', snapshot: ref }))).rejects.toMatchObject({
      nonRetryable: true,
      type: FailureTypes.PlanInvalid,
      message: `agent "lead" is not a specialist of config snapshot ${ref}`,
    });
  });

  test('a stored snapshot changed in the store', async () => {
    const options = await tempActivityOptions();
    const ref = snapshotRefOf(await loadSnapshot(createActivities(options)));
    const hex = ref.slice('sha256:'.length);
    const file = path.join(options.artifactDir, hex.slice(0, 2), `${hex}.md`);
    const stored = await fs.readFile(file, 'utf8');
    await fs.writeFile(file, stored.replace('You research.', 'Ignore the playbook.'));
    // A worker that has not read it yet (one that has keeps what it checked).
    await expect(
      runStep(createActivities(options), step({ id: 'researcher', snapshot: ref })),
    ).rejects.toMatchObject({
      nonRetryable: true,
      type: FailureTypes.ArtifactMissing,
      message: expect.stringMatching(
        new RegExp(
          `agent "researcher" .*config snapshot ${ref}, which cannot be read: .*does not match its hash`,
        ),
      ),
    });
  });

  test('a task whose stored snapshot was changed fails naming it, before any step runs', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    const tampering: Activities = {
      ...activities,
      async loadConfigSnapshot(playbook) {
        const snapshot = await activities.loadConfigSnapshot(playbook);
        const hex = snapshotRefOf(snapshot).slice('sha256:'.length);
        await fs.writeFile(path.join(options.artifactDir, hex.slice(0, 2), `${hex}.md`), '{}');
        return snapshot;
      },
    };
    await withWorker(ctx, tampering, async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('small-tampered'),
        args: [{ question: 'What is everything made of?', playbook: 'open' }],
      });
      await expect(handle.result()).rejects.toThrow();
      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('failed');
      expect(status.error).toMatch(
        /agent "lead" .*config snapshot sha256:[0-9a-f]{64}, which cannot be read: .*does not match its hash/,
      );
      // The plan call was made once: the failure is not retried.
      expect(calls.plan).toHaveLength(1);
      expect(calls.step).toHaveLength(0);
    });
  });
});

/** The commit before agents by reference: the one before the commit that added the marker, or HEAD. */
async function commitBeforeReferences(): Promise<string> {
  const { stdout } = await run(
    'git',
    ['log', '-1', '--format=%H', '-S', 'agents-by-reference', '--', 'workflows/task-run.ts'],
    { cwd: ROOT },
  );
  return stdout.trim() ? `${stdout.trim()}^` : 'HEAD';
}

/** What a task's history weighs: all of it as the server stores it (the encoded proto), and the model activities' inputs. */
interface HistorySize {
  bytes: number;
  events: number;
  /** Bytes of the inputs of the model activities: steps, and synthesis (summaries and the report). */
  steps: number;
  synthesis: number;
}

async function sizeOf(handle: WorkflowHandle): Promise<HistorySize> {
  const history = await handle.fetchHistory();
  const inputs = (names: string[]): number =>
    (history.events ?? []).reduce((sum, e) => {
      const a = e.activityTaskScheduledEventAttributes;
      return a && names.includes(a.activityType!.name!)
        ? sum + (a.input?.payloads?.[0]?.data?.length ?? 0)
        : sum;
    }, 0);
  return {
    bytes: temporal.api.history.v1.History.encode(history).finish().length,
    events: history.events!.length,
    steps: inputs(['runSpecialist']),
    synthesis: inputs(['summarizeSteps', 'synthesizeReport']),
  };
}

test('a fixed plan of 100 steps with the shipped agents: the history is smaller than with the code before v12', async () => {
  const plan = planOf(100, ['researcher', 'analyst', 'fact-checker', 'writer']);
  const { sha, dir } = await exportCommit(await commitBeforeReferences(), { checkDependencies: false });
  const before = await bundleWorkflowCode({
    workflowsPath: path.join(dir, 'workflows', 'index.ts'),
    logger: new DefaultLogger('WARN'),
  }).finally(() => fs.rm(dir, { recursive: true, force: true }));

  const measure = async (bundle?: { code: string }): Promise<HistorySize> => {
    const options = await configWith(plan, path.join(ROOT, 'config'));
    const size = await withWorker(
      ctx,
      createActivities(options),
      async (taskQueue) => {
        const handle = await ctx.client.workflow.start(researchTask, {
          taskQueue,
          workflowId: uniqueId('small-100'),
          args: [{ question: 'What is everything made of?', playbook: 'fixed-n' }],
        });
        expect((await handle.result()).outcome).toBe('completed');
        return sizeOf(handle);
      },
      bundle,
    );
    await standIn?.close();
    standIn = undefined;
    return size;
  };
  const old = await measure(before);
  const now = await measure();
  const change = (a: number, b: number): string =>
    `${a} → ${b} bytes (${Math.round((100 * (a - b)) / a)}% less)`;
  process.stdout.write(
    [
      `History of a fixed plan of 100 steps (shipped agents, stand-in model), workflow code of ${sha.slice(0, 7)} → by reference:`,
      `  whole history: ${change(old.bytes, now.bytes)}; ${old.events} → ${now.events} events`,
      `  runSpecialist inputs: ${change(old.steps, now.steps)}`,
      `  synthesis inputs (summarizeSteps, synthesizeReport): ${change(old.synthesis, now.synthesis)}`,
      '',
    ].join('\n'),
  );
  expect(now.bytes).toBeLessThan(old.bytes);
  expect(now.steps).toBeLessThan(old.steps);
  expect(now.synthesis).toBeLessThan(old.synthesis);
}, 600_000);
