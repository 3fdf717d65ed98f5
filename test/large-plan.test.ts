/**
 * Very large tasks on the real dev server: a plan of 1,000 steps runs in batch children of at most
 * STEPS_PER_RUN steps, so no single run's history comes near Temporal's warning size (10,240
 * events or 10 MB by default); failures and skips inside batches are handled as in small plans.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ActivityOptions } from '../activities/options';
import type { Plan } from '../config/schema';
import { researchTask } from '../workflows/research';
import { STEPS_PER_RUN } from '../workflows/batches';
import { status as statusQuery } from '../contract/messages';
import {
  fakeModelActivities,
  FIXTURE_CONFIG,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  withWorker,
  type FakeModel,
} from './helpers';

const ctx = useTestServer();
const WARN_EVENTS = 10_240;
const WARN_BYTES = 10 * 1024 * 1024;

/** The fixture config plus a playbook allowing 1,000 steps; `onStepFailure` as given. */
async function hugeConfig(onStepFailure: string): Promise<ActivityOptions> {
  const options = await tempActivityOptions();
  const configDir = path.join(path.dirname(options.artifactDir), 'config');
  await fs.cp(FIXTURE_CONFIG, configDir, { recursive: true });
  await fs.writeFile(
    path.join(configDir, 'playbooks', 'huge.yaml'),
    [
      'id: huge',
      'description: A thousand steps.',
      'agents: [researcher, analyst]',
      'limits: { maxSteps: 1000, maxDepth: 0, maxParallel: 64 }',
      `onStepFailure: ${onStepFailure}`,
      '',
    ].join('\n'),
  );
  return { ...options, configDir };
}

/** n steps; each after the tenth depends on the step ten before it, so batches follow each other. */
function planOf(n: number): Plan {
  return {
    rationale: 'Many angles.',
    steps: Array.from({ length: n }, (_, i) => ({
      id: `s${i + 1}`,
      agent: i % 2 ? 'analyst' : 'researcher',
      question: `Angle ${i + 1} of the question.`,
      dependsOn: i >= 10 ? [`s${i - 9}`] : [],
      decompose: false,
    })),
  };
}

const planner =
  (plan: Plan): FakeModel['plan'] =>
  (input) => ({ valid: true, plan, usage: { inputTokens: 10, outputTokens: 5 }, model: input.lead.model });

async function runSizes(handle: WorkflowHandle) {
  const { raw, historyLength } = await handle.describe();
  return { events: historyLength, bytes: Number(raw.workflowExecutionInfo?.historySizeBytes ?? 0) };
}

test('a plan of 1,000 steps completes, with no run’s history near the warning size', async () => {
  const { activities, calls } = fakeModelActivities(await hugeConfig('{ retries: 0, then: fail }'), {
    plan: planner(planOf(1000)),
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('huge'),
      args: [{ question: 'Everything about everything?', playbook: 'huge' }],
    });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(calls.step).toHaveLength(1000);
    // Synthesized in parts (workflows/synthesis.ts): 20 summaries of 50 steps, then the report.
    expect(calls.summaries.flatMap((c) => c.steps.map((x) => x.id))).toHaveLength(1000);
    expect(calls.synthesis[0]!.parts).toHaveLength(20);
    const status = await handle.query(statusQuery);
    expect(status.steps.every((s) => s.state === 'done' && s.result)).toBe(true);
    expect(result.provenance.usage.byAgent.researcher).toEqual({ inputTokens: 5000, outputTokens: 2500 });

    // Every run: the parent and each batch child it started.
    const history = await handle.fetchHistory();
    const batchIds = (history.events ?? []).flatMap((e) => {
      const id = e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId;
      return id ? [id] : [];
    });
    expect(batchIds.length).toBeGreaterThanOrEqual(1000 / STEPS_PER_RUN);
    expect(batchIds.every((id) => id.startsWith(`${handle.workflowId}/batch-`))).toBe(true);
    const parent = await runSizes(handle);
    // A handful of events per batch, not several per step.
    expect(parent.events).toBeLessThan(20 * batchIds.length + 100);
    const sizes = [parent];
    for (const id of batchIds) {
      const batch = ctx.client.workflow.getHandle(id);
      expect((await batch.query(statusQuery)).steps.length).toBeLessThanOrEqual(STEPS_PER_RUN);
      sizes.push(await runSizes(batch));
    }
    for (const size of sizes) {
      expect(size.events).toBeLessThan(WARN_EVENTS / 2);
      expect(size.bytes).toBeLessThan(WARN_BYTES / 2);
    }
  });
}, 180_000);

test('in a batched plan, a step that fails under a skip policy is skipped and its dependents still run', async () => {
  const { activities, calls } = fakeModelActivities(await hugeConfig('{ retries: 0, then: skip }'), {
    plan: planner(planOf(150)),
    step: (input) => {
      if (input.step.id === 's5') throw ApplicationFailure.nonRetryable('source gone', 'SourceDown');
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('huge'),
      args: [{ question: 'Q?', playbook: 'huge' }],
    });
    expect((await handle.result()).outcome).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.steps.find((s) => s.id === 's5')).toMatchObject({ state: 'skipped' });
    expect(status.steps.filter((s) => s.state === 'done')).toHaveLength(149);
    // s15 depends on the skipped s5: it ran, without s5's result as context.
    expect(calls.step.find((c) => c.step.id === 's15')!.context).toEqual([]);
    expect(calls.synthesis[0]!.skipped?.map((s) => s.id)).toEqual(['s5']);
  });
}, 120_000);

test('in a batched plan, a step that fails under a fail policy fails the task, naming the step', async () => {
  const { activities, calls } = fakeModelActivities(await hugeConfig('{ retries: 0, then: fail }'), {
    plan: planner(planOf(150)),
    step: (input) => {
      if (input.step.id === 's7') throw ApplicationFailure.nonRetryable('source gone', 'SourceDown');
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('huge'),
      args: [{ question: 'Q?', playbook: 'huge' }],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause?.message).toMatch(/^step "s7" \(agent "researcher"\) failed: /);
    expect(calls.synthesis).toHaveLength(0);
    // The batch in flight finished; nothing after it started (s17 depends on s7).
    expect(calls.step.some((c) => c.step.id === 's17')).toBe(false);
  });
}, 120_000);
