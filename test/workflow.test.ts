/**
 * The research workflow on a real Temporal dev server, with the model calls replaced by plain
 * functions (exact and fast). Config loading, the artifact store and publishing are real.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { promises as fs } from 'node:fs';
import { researchTask } from '../workflows';
import {
  approve,
  reject,
  requestChanges,
  status as statusQuery,
  type AuditEntry,
} from '../contract/messages';
import {
  DEFAULT_PLAN,
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  waitForStatus,
  withWorker,
  useTestServer,
} from './helpers';

const decisions = (audit: AuditEntry[]): AuditEntry[] => audit.filter((e) => e.event === 'decision');

const ctx = useTestServer();

const start = (taskQueue: string, playbook: string, question = 'How do A and B compare?') =>
  ctx.client.workflow.start(researchTask, {
    taskQueue,
    workflowId: uniqueId('wf'),
    args: [{ question, playbook }],
  });

describe('researchTask', () => {
  test('runs the whole flow with both gates approved by signal, and publishes a labelled report', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      expect(calls.step).toHaveLength(0); // nothing runs before the plan is approved
      await handle.signal(approve, { by: 'alice', gate: 'plan', comment: 'fine' });
      const atReport = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report',
        'the report gate',
      );
      expect(atReport.steps.map((s) => s.state)).toEqual(['done', 'done', 'done']);
      await handle.signal(approve, { by: 'bob' });
      const result = await handle.result();

      expect(result.outcome).toBe('completed');
      expect(result.provenance.approvals.map((a) => [a.gate, a.by])).toEqual([
        ['plan', 'alice'],
        ['report', 'bob'],
      ]);
      expect(result.provenance.configDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(result.provenance.runId).toBe(handle.firstExecutionRunId);
      // 3 steps + 1 plan + 1 synthesis, 10 in / 5 out each.
      expect(result.provenance.usage).toMatchObject({ inputTokens: 50, outputTokens: 25 });
      expect(result.provenance.agents.map((a) => a.id).sort()).toEqual(['analyst', 'lead', 'researcher']);

      const text = await fs.readFile(result.reportPath!, 'utf8');
      expect(text.startsWith('> **AI-generated content.**')).toBe(true);
      expect(text.match(/AI-generated content/g)).toHaveLength(2); // top and bottom
      expect(text).toContain(`"contentHash": "${result.provenance.contentHash}"`);
      // The analyst's step was given both gathering results as context.
      expect(calls.step.find((c) => c.step.id === 's3')!.context.map((c) => c.id)).toEqual(['s1', 's2']);
      const final = await handle.query(statusQuery);
      expect(final.phase).toBe('completed');
      expect(final.report?.path).toBe(result.reportPath);
    });
  });

  test('a rejected plan ends the task without running any step', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await handle.signal(reject, { by: 'bob', comment: 'out of scope' });
      const result = await handle.result();
      expect(result.outcome).toBe('rejected');
      expect(result.reportPath).toBeUndefined();
      expect(calls.step).toHaveLength(0);
      expect(decisions(result.provenance.audit)).toEqual([
        expect.objectContaining({
          decision: 'reject',
          by: 'bob',
          gate: 'plan',
          accepted: true,
          comment: 'out of scope',
        }),
      ]);
      expect((await handle.query(statusQuery)).phase).toBe('rejected');
    });
  });

  test('requestChanges on the plan re-plans with the comment, and the revised plan is what runs', async () => {
    const options = await tempActivityOptions();
    const revised = {
      rationale: 'Revised.',
      steps: [{ id: 'only', agent: 'analyst', question: 'Cover cost too.', dependsOn: [], decompose: false }],
    };
    const { activities, calls } = fakeModelActivities(options, {
      plan: (_input, call) => ({
        valid: true,
        plan: call === 1 ? DEFAULT_PLAN : revised,
        usage: { inputTokens: 1, outputTokens: 1 },
        model: 'm',
      }),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await handle.signal(requestChanges, { by: 'alice', comment: 'Please cover cost.' });
      const second = await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'plan' && s.revisions.plan === 1,
        'the re-plan',
      );
      expect(calls.plan).toHaveLength(2);
      expect(calls.plan[1]!.change).toEqual({ by: 'alice', comment: 'Please cover cost.' });
      expect(second.plan).toEqual(revised);
      // The playbook allows one revision round: a second request is refused, the gate stays open.
      await handle.signal(requestChanges, { by: 'alice', comment: 'And more.' });
      const refused = await waitForStatus(
        handle,
        (s) => decisions(s.audit).length === 2,
        'the refused request',
      );
      expect(decisions(refused.audit)[1]).toMatchObject({
        accepted: false,
        reason: expect.stringContaining('revision round'),
      });
      expect(refused.pendingGate?.gate).toBe('plan');
      await handle.signal(approve, { by: 'alice' });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
      expect(calls.step.map((c) => c.step.id)).toEqual(['only']);
      await handle.signal(approve, { by: 'alice' });
      expect((await handle.result()).outcome).toBe('completed');
    });
  });

  test('requestChanges on the report re-runs synthesis with the comment', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await handle.signal(approve, { by: 'alice' });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate');
      await handle.signal(requestChanges, { by: 'bob', gate: 'report', comment: 'Shorter, please.' });
      await waitForStatus(
        handle,
        (s) => s.pendingGate?.gate === 'report' && s.revisions.report === 1,
        'the revised report',
      );
      expect(calls.synthesis).toHaveLength(2);
      expect(calls.synthesis[1]!.change?.comment).toBe('Shorter, please.');
      expect(calls.step).toHaveLength(3); // the steps did not run again
      await handle.signal(approve, { by: 'bob' });
      const result = await handle.result();
      expect(await fs.readFile(result.reportPath!, 'utf8')).toContain('Revised for: Shorter, please.');
    });
  });

  test('independent steps run concurrently', async () => {
    // s1 and s2 each wait, at a barrier, until the other has started: both can only finish if the
    // workflow has them in flight at once. Sequential execution would stall at the barrier.
    const started = new Map<string, () => void>();
    const barrier = Promise.all(
      ['s1', 's2'].map((id) => new Promise<void>((resolve) => started.set(id, resolve))),
    );
    const stalled = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('s1 and s2 never ran at the same time')), 15_000).unref(),
    );
    stalled.catch(() => undefined); // handled here too: after a pass it fires with nobody racing it
    const inFlight = new Set<string>();
    let maxInFlight = 0;
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options, {
      step: async (input) => {
        inFlight.add(input.step.id);
        maxInFlight = Math.max(maxInFlight, inFlight.size);
        started.get(input.step.id)?.();
        if (started.has(input.step.id)) await Promise.race([barrier, stalled]);
        inFlight.delete(input.step.id);
      },
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const result = await (await start(taskQueue, 'open')).result();
      expect(result.outcome).toBe('completed');
    });
    expect(maxInFlight).toBe(2);
  });

  test('at most maxParallel steps are in flight', async () => {
    const plan = {
      rationale: 'Five independent steps.',
      steps: ['a', 'b', 'c', 'd', 'e'].map((id) => ({
        id,
        agent: 'researcher',
        question: id,
        dependsOn: [],
        decompose: false,
      })),
    };
    // Steps hold until released. The workflow schedules every ready step in one activation, so a
    // status with two running and three pending is the scheduler stopping at the bound.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let twoStarted!: () => void;
    const bothStarted = new Promise<void>((resolve) => (twoStarted = resolve));
    const inFlight = new Set<string>();
    let maxInFlight = 0;
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options, {
      plan: () => ({ valid: true, plan, usage: { inputTokens: 1, outputTokens: 1 }, model: 'm' }),
      step: async (input) => {
        inFlight.add(input.step.id);
        maxInFlight = Math.max(maxInFlight, inFlight.size);
        if (inFlight.size === 2) twoStarted();
        await released;
        inFlight.delete(input.step.id);
      },
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'open'); // playbook "open": maxParallel 2
      await bothStarted; // two activities are executing and held
      const s = await waitForStatus(
        handle,
        (st) => st.steps.some((step) => step.state === 'running'),
        'steps to start',
      );
      expect(s.steps.map((step) => step.state)).toEqual([
        'running',
        'running',
        'pending',
        'pending',
        'pending',
      ]);
      release();
      await handle.result();
    });
    expect(calls.step).toHaveLength(5);
    expect(maxInFlight).toBe(2);
  });

  test('a decomposable step becomes a child workflow one level deeper, and depth is respected there', async () => {
    const top = {
      rationale: 'One big step.',
      steps: [
        { id: 'big', agent: 'researcher', question: 'A large sub-question.', dependsOn: [], decompose: true },
      ],
    };
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options, {
      plan: (input) =>
        input.limits.depth === 0
          ? { valid: true, plan: top, usage: { inputTokens: 1, outputTokens: 1 }, model: 'm' }
          : { valid: true, plan: DEFAULT_PLAN, usage: { inputTokens: 2, outputTokens: 2 }, model: 'm' },
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'open', 'A big question');
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      const childId = `${handle.workflowId}/step-big`;
      const child = await ctx.client.workflow.getHandle(childId).describe();
      expect(child.type).toBe('researchSubtask');
      expect(child.parentExecution?.workflowId).toBe(handle.workflowId);
      // The child planned at depth 1 of 1 and so was told it may not decompose again.
      expect(calls.plan.map((p) => [p.limits.depth, p.limits.maxDepth, p.question])).toEqual([
        [0, 1, 'A big question'],
        [1, 1, 'A large sub-question.'],
      ]);
      expect(calls.step.map((c) => c.step.id).sort()).toEqual(['s1', 's2', 's3']);
      const status = await handle.query(statusQuery);
      expect(status.steps[0]).toMatchObject({ id: 'big', state: 'done', childWorkflowId: childId });
      // Usage of the child's calls is rolled up: 1+2 plan, 3 steps, 2 syntheses (child and parent).
      expect(status.usage.inputTokens).toBe(1 + 2 + 30 + 20);
    });
  });

  test('a decomposing plan at the depth limit is refused by the workflow itself and re-asked', async () => {
    const tooDeep = {
      rationale: 'Tries to decompose in a child.',
      steps: [{ id: 'x', agent: 'researcher', question: 'Go deeper.', dependsOn: [], decompose: true }],
    };
    const top = { rationale: 'Big.', steps: [{ ...tooDeep.steps[0]!, id: 'big' }] };
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options, {
      // Claims to be valid: the workflow must not trust that.
      plan: (input) => ({
        valid: true,
        plan: input.limits.depth === 0 ? top : tooDeep,
        usage: { inputTokens: 1, outputTokens: 1 },
        model: 'm',
      }),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'open');
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const message = (err as WorkflowFailedError).cause?.message;
      expect(message).toContain('step "big"');
      expect(message).toContain('depth budget is spent');
      // Playbook "open" allows 2 plan attempts: 1 at the top, 2 in the child, and no step ran.
      expect(calls.plan).toHaveLength(3);
      expect(calls.plan[2]!.previousProblems).toEqual([expect.stringContaining('depth budget is spent')]);
      expect(calls.step).toHaveLength(0);
    });
  });

  test('an invalid plan is re-asked with the problems, and fails the task clearly when it stays invalid', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options, {
      plan: () => ({
        valid: false,
        problems: ['steps[0] ("s1"): agent "hacker" is not allowed here'],
        usage: { inputTokens: 1, outputTokens: 1 },
        model: 'm',
      }),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      const err = await handle.result().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WorkflowFailedError);
      const cause = (err as WorkflowFailedError).cause!;
      expect(cause.message).toMatch(/produced no valid plan in 3 attempts.*agent "hacker" is not allowed/);
      expect(calls.plan).toHaveLength(3);
      expect(calls.plan[0]!.previousProblems).toBeUndefined();
      expect(calls.plan[1]!.previousProblems).toEqual([
        'steps[0] ("s1"): agent "hacker" is not allowed here',
      ]);
      const status = await handle.query(statusQuery);
      expect(status.phase).toBe('failed');
      expect(status.planAttempts).toBe(3);
    });
  });

  test('a second attempt that fixes the plan continues normally', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options, {
      plan: (_input, call) =>
        call === 1
          ? {
              valid: false,
              problems: ['dependency cycle: s1 -> s2 -> s1'],
              usage: { inputTokens: 1, outputTokens: 1 },
              model: 'm',
            }
          : { valid: true, plan: DEFAULT_PLAN, usage: { inputTokens: 1, outputTokens: 1 }, model: 'm' },
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'open');
      expect((await handle.result()).outcome).toBe('completed');
      expect((await handle.query(statusQuery)).planAttempts).toBe(2);
    });
  });

  test('decisions for the wrong gate, from non-approvers or malformed are refused, recorded and change nothing', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'gated');
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      await handle.signal(approve, { by: 'alice', gate: 'report' });
      await handle.signal(approve, { by: 'mallory' });
      await handle.signal(approve, { gate: 'plan' } as never);
      await handle.signal(reject, { by: 'alice', extra: true } as never);
      const s = await waitForStatus(handle, (st) => decisions(st.audit).length === 4, 'four refusals');
      expect(decisions(s.audit).map((d) => [d.accepted, d.reason])).toEqual([
        [false, 'the report gate is not pending; the pending gate is plan'],
        [false, '"mallory" is not an approver of the plan gate now (approvers: alice, bob)'],
        [false, expect.stringMatching(/^malformed approve payload: by: /)],
        [false, expect.stringMatching(/^malformed reject payload: .*extra/)],
      ]);
      expect(s.pendingGate?.gate).toBe('plan');
      expect(s.phase).toBe('awaiting-plan-approval');
      expect(calls.step).toHaveLength(0);

      await handle.signal(approve, { by: 'alice' });
      await waitForStatus(handle, (st) => st.pendingGate?.gate === 'report', 'the report gate');
      // A plan decision arriving now, with the plan gate closed, is refused as well.
      await handle.signal(reject, { by: 'bob', gate: 'plan' });
      const later = await waitForStatus(handle, (st) => decisions(st.audit).length === 6, 'the late refusal');
      expect(decisions(later.audit)[5]).toMatchObject({
        accepted: false,
        gate: 'plan',
        reason: 'the plan gate is not pending; the pending gate is report',
      });
      await handle.signal(approve, { by: 'bob' });
      expect((await handle.result()).outcome).toBe('completed');
    });
  });

  test('a fixed plan runs without asking the lead, and an unanswered gate follows its deadline policy', async () => {
    const options = await tempActivityOptions();
    const { activities, calls } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await start(taskQueue, 'fixed');
      const result = await handle.result();
      expect(result.outcome).toBe('completed');
      expect(calls.plan).toHaveLength(0);
      expect(calls.step.map((c) => c.step.id)).toEqual(['gather', 'weigh']);
      // The plan gate had a 1 s deadline with auto-approve: recorded as the system's doing.
      expect(result.provenance.audit.map((e) => e.event)).toEqual(['gate-opened', 'deadline', 'gate-closed']);
      expect(result.provenance.audit[1]).toMatchObject({
        by: 'system',
        reason: expect.stringContaining('policy: auto-approve'),
      });
      expect(result.provenance.approvals).toEqual([
        expect.objectContaining({ gate: 'plan', by: 'system (auto-approve)' }),
      ]);
    });
  });

  test('bad input fails the task at once with a message naming the field', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const empty = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('wf'),
        args: [{ question: '   ' }],
      });
      const err = await empty.result().catch((e: unknown) => e);
      expect((err as WorkflowFailedError).cause?.message).toBe(
        'invalid researchTask input: question: must not be empty',
      );

      const unknown = await start(taskQueue, 'no-such-playbook');
      const err2 = await unknown.result().catch((e: unknown) => e);
      // The config snapshot is a local activity (v18): its failure is the task's, not wrapped in an ActivityFailure.
      expect((err2 as WorkflowFailedError).cause?.message).toBe(
        'unknown playbook "no-such-playbook"; available: batched, budgeted, deadline-reject, deadlines, fixed, gated, open, resilient',
      );
    });
  });
});
