/**
 * Token budgets from the playbook, enforced by the workflow on the real dev server: when the next
 * step would take the task past its budget, no new step starts, the rest are skipped, the task
 * synthesizes what it has and says so (status, audit trail, provenance, the report's Gaps).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { researchTask } from '../workflows';
import { status as statusQuery } from '../contract/messages';
import { reportReader } from '../workers/store';
import {
  DEFAULT_PLAN,
  fakeModelActivities,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  withWorker,
} from './helpers';

const ctx = useTestServer();

test('a task stops scheduling steps when the next would exceed its budget, and synthesizes what it has', async () => {
  // Each step spends 300 tokens; the budget is 1000. After a1 (300 spent) the next step and the
  // synthesis are estimated at 300 each: 900, fine. After a2 (600 spent): 1200, over.
  const options = await tempActivityOptions();
  const { activities, calls } = fakeModelActivities(options, {
    stepUsage: () => ({ inputTokens: 200, outputTokens: 100 }),
  });
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('budget'),
      args: [{ question: 'Which angles matter?', playbook: 'budgeted' }],
    });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(calls.step.map((c) => c.step.id)).toEqual(['a1', 'a2']);

    const status = await handle.query(statusQuery);
    expect(status.steps.map((s) => [s.id, s.state])).toEqual([
      ['a1', 'done'],
      ['a2', 'done'],
      ['a3', 'skipped'],
      ['a4', 'skipped'],
      ['a5', 'skipped'],
      ['a6', 'skipped'],
    ]);
    const reason = 'token budget: 600 of 1000 tokens spent; the next step would exceed it';
    expect(status.steps[2]!.error).toBe(`not run: ${reason}`);
    expect(status.budget).toEqual({
      maxTokensPerTask: 1000,
      maxTokensPerStep: 500,
      stopped: { at: expect.any(String), reason },
    });
    expect(status.audit.filter((e) => e.event === 'budget-exhausted')).toEqual([
      { at: expect.any(String), gate: null, event: 'budget-exhausted', reason },
    ]);
    expect(result.provenance.budget).toEqual(status.budget);

    // The synthesis was told which steps are missing and why; the report says so.
    expect(calls.synthesis).toHaveLength(1);
    expect(calls.synthesis[0]!.steps.map((s) => s.id)).toEqual(['a1', 'a2']);
    expect(calls.synthesis[0]!.skipped?.map((s) => [s.id, s.reason])).toEqual(
      ['a3', 'a4', 'a5', 'a6'].map((id) => [id, `not run: ${reason}`]),
    );

    // The signed-off report is labelled PARTIAL, with the budget's reason, at its top and bottom.
    const read = reportReader({
      BATON_ARTIFACT_DIR: options.artifactDir,
      BATON_REPORT_DIR: options.reportDir,
    });
    const text = (await read(result.reportPath!))!.toString('utf8');
    const labels = text.split('\n').filter((line) => line.startsWith('> **AI-generated content.**'));
    expect(labels).toHaveLength(2);
    for (const label of labels)
      expect(label).toContain(
        `**PARTIAL: the token budget stopped the task before every planned step ran; the Gaps section names what is missing.** Stopped because: ${reason}.`,
      );
  });
});

test('the per-step budget caps each specialist call and becomes a decomposed step’s task budget', async () => {
  const options = await tempActivityOptions();
  // A playbook like budgeted, with the lead's plan (which decomposes s1) instead of a fixed plan.
  const configDir = path.join(path.dirname(options.artifactDir), 'config');
  await fs.cp(path.join(__dirname, 'fixtures', 'config'), configDir, { recursive: true });
  await fs.writeFile(
    path.join(configDir, 'playbooks', 'budgeted-plan.yaml'),
    [
      'id: budgeted-plan',
      'description: Per-step budget with a decomposed step.',
      'agents: [researcher, analyst]',
      'limits: { maxSteps: 5, maxDepth: 1, maxParallel: 3 }',
      'budget: { maxTokensPerStep: 400 }',
      '',
    ].join('\n'),
  );
  const plan = {
    ...DEFAULT_PLAN,
    steps: DEFAULT_PLAN.steps.map((s) => (s.id === 's1' ? { ...s, decompose: true } : s)),
  };
  const { activities, calls } = fakeModelActivities(
    { ...options, configDir },
    {
      plan: (input) => ({
        valid: true,
        // The child plans one level deeper, without decomposing again.
        plan: input.limits.depth === 0 ? plan : DEFAULT_PLAN,
        usage: { inputTokens: 10, outputTokens: 5 },
        model: input.lead.model,
      }),
    },
  );
  await withWorker(ctx, activities, async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('budget'),
      args: [{ question: 'Which angles matter?', playbook: 'budgeted-plan' }],
    });
    expect((await handle.result()).outcome).toBe('completed');
    // Fixture agents allow 1000 output tokens; every step ran with 400.
    expect(calls.step.length).toBeGreaterThan(2);
    for (const call of calls.step) expect(call.agent.maxTokens).toBe(400);
    const status = await handle.query(statusQuery);
    const child = await ctx.client.workflow.getHandle(status.steps[0]!.childWorkflowId!).query(statusQuery);
    expect(child.budget).toEqual({ maxTokensPerTask: 400, maxTokensPerStep: 400 });
    expect(status.budget).toEqual({ maxTokensPerStep: 400 });
  });
});
