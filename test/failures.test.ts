/**
 * When steps fail and when a task is cancelled, on the real dev server: the playbook's
 * step-failure policy (run the step again, then skip it or fail the task) and cancellation that
 * keeps what was done.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { type Activities, type SynthesisInput, type SynthesisResult } from '../contract/activities';
import type { ConfigSnapshot } from '../config/schema';
import { getArtifact, putArtifact } from '../activities/artifacts';
import { openStores } from '../activities/store';
import { startStandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { status as statusQuery } from '../contract/messages';
import {
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  waitForStatus,
  withWorker,
  useTestServer,
} from './helpers';

const ctx = useTestServer();

const start = (taskQueue: string, playbook: string) =>
  ctx.client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId('failures'),
    args: [{ question: 'How do A and B compare?', playbook }],
  });

const brokenStep = () => ApplicationFailure.nonRetryable('the source is unreachable', 'SourceDown');

test('a step that keeps failing is run again once, then skipped: its dependents go on and synthesis is told', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions(), {
    step: (input) => {
      if (input.step.id === 's2') throw brokenStep();
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'resilient'); // onStepFailure: { retries: 1, then: skip }
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(calls.step.map((c) => c.step.id).sort()).toEqual(['s1', 's2', 's2', 's3']);
    const s3 = calls.step.find((c) => c.step.id === 's3')!;
    expect(s3.context.map((c) => c.id)).toEqual(['s1']); // the skipped step has no result to give
    expect(calls.synthesis[0]!.skipped).toEqual([
      expect.objectContaining({
        id: 's2',
        agent: 'researcher',
        reason: expect.stringContaining('the source is unreachable'),
      }),
    ]);
    expect(calls.synthesis[0]!.steps.map((s) => s.id)).toEqual(['s1', 's3']);
    const status = await handle.query(statusQuery);
    expect(status.steps.find((s) => s.id === 's2')).toMatchObject({ state: 'skipped', attempt: 2 });
  });
});

test('a step that fails once and then succeeds when run again counts as done', async () => {
  let failures = 0;
  const { activities } = fakeModelActivities(await tempActivityOptions(), {
    step: (input) => {
      if (input.step.id === 's1' && failures++ === 0) throw brokenStep();
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'resilient');
    expect((await handle.result()).outcome).toBe('completed');
    const status = await handle.query(statusQuery);
    expect(status.steps.find((s) => s.id === 's1')).toMatchObject({ state: 'done', attempt: 2 });
  });
});

test('without a skip policy, a failed step fails the task naming the step, and no further step starts', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions(), {
    step: (input) => {
      if (input.step.id === 's2') throw brokenStep();
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await start(taskQueue, 'open');
    const err = await handle.result().catch((e: unknown) => e);
    expect((err as WorkflowFailedError).cause?.message).toMatch(
      /^step "s2" \(agent "researcher"\) failed: .*the source is unreachable/,
    );
    expect(calls.step.map((c) => c.step.id).sort()).toEqual(['s1', 's2']); // s3 never started
  });
});

test('cancelling a task stops its steps, keeps what was done and publishes a partial report', async () => {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const options = await tempActivityOptions();
  const { activities } = fakeModelActivities(options, {
    step: async (input) => {
      if (input.step.id === 's2') await held; // in flight when the task is cancelled
    },
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    // Released before the worker stops: shutting down waits for activities still running.
    try {
      const handle = await start(taskQueue, 'open');
      await waitForStatus(
        handle,
        (s) =>
          s.steps.some((st) => st.id === 's1' && st.state === 'done') &&
          s.steps.some((st) => st.id === 's2' && st.state === 'running'),
        's1 done and s2 running',
      );
      await handle.cancel();
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('cancelled');
      expect(status.error).toBe('the task was cancelled');
      expect(status.steps.map((s) => [s.id, s.state])).toEqual([
        ['s1', 'done'],
        ['s2', 'failed'],
        ['s3', 'pending'],
      ]);
      expect(status.report?.path).toMatch(/\.partial\.md$/);
      const text = await fs.readFile(status.report!.path!, 'utf8');
      expect(text.split('\n')[0]).toContain('**PARTIAL: the task stopped before the report was signed off');
      expect(text).toContain('Findings of s1: Gather evidence A.');
      expect(text).not.toContain('Findings of s2');
    } finally {
      release();
    }
  });
});

test('a report that lost a step says so in a Gaps section (real synthesis through the stand-in)', async () => {
  const standIn = await startStandIn();
  try {
    const options = {
      ...(await tempActivityOptions(path.join(__dirname, '..', 'config'))),
      baseURL: standIn.url,
    };
    const activities = createActivities(options);
    const found = await putArtifact(openStores(options).artifacts, 'Findings of s1.');
    const env = new MockActivityEnvironment();
    // The activity context gives the model call its heartbeat; the types name what run() returns.
    const snapshot = await env.run<[string], ConfigSnapshot, Activities['loadConfigSnapshot']>(
      activities.loadConfigSnapshot.bind(activities),
      'research-brief',
    );
    const result = await env.run<[SynthesisInput], SynthesisResult, Activities['synthesizeReport']>(
      activities.synthesizeReport.bind(activities),
      {
        question: 'Q?',
        lead: snapshot.lead,
        steps: [{ id: 's1', agent: 'researcher', question: 'Gather.', result: found, sources: [] }],
        skipped: [{ id: 's2', agent: 'analyst', question: 'Weigh.', reason: 'the source is unreachable' }],
      },
    );
    const body = await getArtifact(openStores(options).artifacts, result.report.id);
    expect(body).toContain(
      '## Gaps\nThese steps did not complete (they failed and were skipped, or the token budget ran out), so the report does not cover them:\n- **s2** (analyst): Weigh. — the source is unreachable',
    );
  } finally {
    await standIn.close();
  }
});

test('many activities storing the same text at once all succeed (no shared temporary file)', async () => {
  const options = await tempActivityOptions();
  const { artifactDir } = options;
  const { artifacts } = openStores(options);
  const text = 'Identical findings, stored by parallel steps of different tasks.';
  const refs = await Promise.all(Array.from({ length: 20 }, () => putArtifact(artifacts, text)));
  expect(new Set(refs.map((r) => r.id)).size).toBe(1);
  expect(await getArtifact(artifacts, refs[0]!.id)).toBe(text);
  const leftovers = (await fs.readdir(artifactDir, { recursive: true })).filter((f) => f.endsWith('.tmp'));
  expect(leftovers).toEqual([]);
});
