/**
 * Every ending leaves a deliverable (issue 15, item 4), on the real dev server with real workers: a
 * task that fails once it has work to show (a failed step under `onStepFailure: fail`, a failed
 * synthesis, a failed publish, a budget-stopped task whose synthesis then fails) publishes a
 * PARTIAL report, labelled, whose provenance says why; `npm run audit -- --verify` accepts it.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { promises as fs } from 'node:fs';
import type { Plan } from '../config/schema';
import type { Activities } from '../contract/activities';
import { status as statusQuery, type Provenance } from '../contract/messages';
import { researchTask } from '../workflows';
import {
  fakeModelActivities,
  tempActivityOptions,
  testPublishersFile,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
  type FakeModel,
} from './helpers';
import { auditVerify } from './audit-verify';

const ctx = useTestServer();

/**
 * Runs a task with `playbook` on fake model activities (changed by `change`) until it fails, and
 * returns the failure, the task's status and the partial report's text and provenance.
 */
async function failedTask(
  playbook: string,
  fake: FakeModel,
  change: (activities: Activities) => Partial<Activities> = () => ({}),
) {
  const { activities } = fakeModelActivities(await tempActivityOptions(), fake);
  return withWorker(ctx, { ...activities, ...change(activities) }, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('ending'),
      args: [{ question: 'How do A and B compare?', playbook }],
    });
    const err = await handle.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('failed');
    expect(status.report?.path).toMatch(/\.partial\.md$/);
    const file = status.report!.path!;
    const text = await fs.readFile(file, 'utf8');
    const json = /## Provenance\n\n```json\n([\s\S]*?)\n```/.exec(text)![1]!;
    return { status, file, text, provenance: JSON.parse(json) as Provenance };
  });
}

/** `npm run audit -- --verify` on the file, with the test publisher's key listed. */
async function verified(file: string) {
  return auditVerify(file, await testPublishersFile());
}

/** The checks every partial report passes: labelled, with the reason, and verifiable. */
async function expectPartial(
  { file, text, provenance }: Awaited<ReturnType<typeof failedTask>>,
  reason: string,
): Promise<void> {
  expect(provenance.reportKind).toBe('partial');
  expect(provenance.stoppedBecause).toContain(reason);
  const label = text.split('\n')[0]!;
  expect(label).toContain('**PARTIAL: the task stopped before the report was signed off');
  expect(label).toContain(`Stopped because: `);
  expect(label).toContain(reason);
  expect(await verified(file)).toMatchObject({ code: 0, err: [] });
}

const refused = (what: string) => ApplicationFailure.nonRetryable(what, 'Refused');

test('a failed step under onStepFailure: fail publishes the finished steps as a partial report saying which step failed', async () => {
  const ended = await failedTask('open', {
    step: (input) => {
      if (input.step.id === 's2') throw refused('the source is unreachable');
    },
  });
  await expectPartial(ended, 'step "s2" (agent "researcher") failed');
  expect(ended.text).toContain('Findings of s1: Gather evidence A.');
  expect(ended.text).not.toContain('Findings of s2');
}, 120_000);

test('a failed synthesis publishes every step’s findings as a partial report saying why', async () => {
  const ended = await failedTask('open', {}, () => ({
    synthesizeReport: () => Promise.reject(refused('the lead refused to write the report')),
  }));
  await expectPartial(ended, 'the lead refused to write the report');
  for (const id of ['s1', 's2', 's3']) expect(ended.text).toContain(`Findings of ${id}:`);
}, 120_000);

test('a failed publish of the final report publishes the synthesized report as partial, saying why', async () => {
  const ended = await failedTask('open', {}, (activities) => ({
    publishReport: (input) =>
      input.kind === 'partial'
        ? activities.publishReport(input)
        : Promise.reject(refused('the report store refused the write')),
  }));
  await expectPartial(ended, 'the report store refused the write');
  // The partial report is the lead's report, not the raw findings.
  expect(ended.text).toContain('Claim from s3 [step:s3]');
}, 120_000);

test('a budget-stopped task whose synthesis then fails publishes what it had, with the budget’s reason in its provenance', async () => {
  const ended = await failedTask(
    'budgeted',
    { stepUsage: () => ({ inputTokens: 200, outputTokens: 100 }) },
    () => ({ synthesizeReport: () => Promise.reject(refused('the lead is over budget')) }),
  );
  await expectPartial(ended, 'the lead is over budget');
  expect(ended.provenance.budget?.stopped?.reason).toContain('token budget');
  expect(ended.status.steps.filter((s) => s.state === 'skipped').length).toBeGreaterThan(0);
}, 120_000);

test('cancelling a batched task keeps the finished steps of the batch in flight: they reach the partial report', async () => {
  const plan: Plan = {
    rationale: 'Many independent angles.',
    steps: Array.from({ length: 120 }, (_, i) => ({
      id: `s${i + 1}`,
      agent: 'researcher',
      question: `Angle ${i + 1}.`,
      dependsOn: [],
      decompose: false,
    })),
  };
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const { activities } = fakeModelActivities(await tempActivityOptions(), {
    plan: (input) => ({
      valid: true,
      plan,
      usage: { inputTokens: 1, outputTokens: 1 },
      model: input.lead.model,
    }),
    step: async (input) => {
      if (input.step.id === 's20') await held; // in flight in batch 1 when the task is cancelled
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    try {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('ending-batched'),
        args: [{ question: 'Everything?', playbook: 'batched' }],
      });
      // Batch 1 (s1…s100, 16 slots) has finished every step but s20; batch 2 waits for slots.
      await waitForStatus(handle, (s) => s.steps.some((st) => st.state === 'running'), 'batch 1 started');
      await waitForStatus(
        ctx.client.workflow.getHandle(`${handle.workflowId}/batch-1`),
        (s) => s.steps.filter((st) => st.state === 'done').length === 99,
        'batch 1 done but s20',
      );
      await handle.cancel();
      await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('cancelled');
      expect(status.steps.filter((st) => st.state === 'done')).toHaveLength(99);
      expect(status.steps.find((st) => st.id === 's20')?.state).toBe('failed');
      const file = status.report!.path!;
      const text = await fs.readFile(file, 'utf8');
      expect(text.split('\n')[0]).toContain('Stopped because: the task was cancelled.');
      for (const id of ['s1', 's19', 's21', 's100']) expect(text).toContain(`Findings of ${id}:`);
      expect(text).not.toContain('Findings of s20:');
      expect(await verified(file)).toMatchObject({ code: 0, err: [] });
    } finally {
      release();
    }
  });
}, 180_000);
