/**
 * The whole stack: the real config, the real activities and the real Anthropic SDK against the
 * loopback stand-in model, on the real Temporal dev server, started and signed off by signal.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { BODY_END, BODY_START } from '../activities/report';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { approve, status as statusQuery } from '../contract/messages';
import {
  historyText,
  tempActivityOptions,
  TEST_PUBLISHER,
  uniqueId,
  waitForStatus,
  withWorker,
  useTestServer,
} from './helpers';

const API_KEY = 'sk-test-integration-secret-0123456789';
const QUESTION = 'How do solid-state batteries compare with lithium-ion for EVs?';

const ctx = useTestServer();
let standIn: StandIn;
beforeAll(async () => {
  standIn = await startStandIn();
});
afterAll(async () => {
  await standIn?.close();
});
beforeEach(() => standIn.resetStats());

async function realActivities() {
  const options = {
    ...(await tempActivityOptions(path.join(__dirname, '..', 'config'))),
    apiKey: API_KEY,
    baseURL: standIn.url,
  };
  return createActivities(options);
}

test('a research-brief task runs end to end through the real SDK and stand-in, signed off by signal', async () => {
  await withWorker(ctx, await realActivities(), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('research'),
      args: [{ question: QUESTION }],
    });
    const atPlan = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
    expect(atPlan.playbook).toBe('research-brief');
    const plan = atPlan.plan!;
    // The stand-in plans with independent gathering steps, then steps that depend on them.
    expect(plan.steps.filter((s) => s.dependsOn.length === 0).length).toBeGreaterThanOrEqual(2);
    expect(plan.steps.some((s) => s.decompose)).toBe(true);
    await handle.signal(approve, { by: 'reviewer@example.com', gate: 'plan' });

    const atReport = await waitForStatus(
      handle,
      (s) => s.pendingGate?.gate === 'report',
      'the report gate',
      60_000,
    );
    expect(atReport.steps.every((s) => s.state === 'done')).toBe(true);
    // Approvers read a labelled draft before they decide.
    const draft = await fs.readFile(atReport.report!.draftPath!, 'utf8');
    expect(atReport.report!.draftPath).toMatch(/\.draft\.md$/);
    expect(draft.split('\n')[0]).toContain('**DRAFT awaiting sign-off: not final.**');
    const decomposed = atReport.steps.find((s) => s.decompose)!;
    expect(decomposed.childWorkflowId).toBe(`${handle.workflowId}/step-${decomposed.id}`);
    const child = await ctx.client.workflow.getHandle(decomposed.childWorkflowId!).query(statusQuery);
    expect(child).toMatchObject({ depth: 1, phase: 'completed' });
    expect(child.plan!.steps.every((s) => !s.decompose)).toBe(true); // depth budget spent in the child
    await handle.signal(approve, { by: 'editor@example.com' });
    const result = await handle.result();

    expect(result.outcome).toBe('completed');
    const stats = standIn.stats();
    const steps = atReport.steps.filter((s) => !s.decompose).length + child.steps.length;
    expect(stats.byTool).toEqual({ submit_plan: 2, submit_findings: steps, submit_report: 2 });
    // Usage comes from the responses' usage fields, summed across parent and child.
    expect(result.provenance.usage.inputTokens).toBeGreaterThan(0);
    expect(result.provenance.usage.byAgent.lead!.outputTokens).toBeGreaterThan(0);
    expect(result.provenance.agents).toContainEqual({
      id: 'lead',
      model: 'claude-opus-5-5',
      role: expect.any(String),
    });
    expect(result.provenance.approvals.map((a) => a.by)).toEqual([
      'reviewer@example.com',
      'editor@example.com',
    ]);

    // The published report: labelled at top and bottom, cites steps, and its hash verifies.
    const text = await fs.readFile(result.reportPath!, 'utf8');
    expect(text.split('\n')[0]).toMatch(/^> \*\*AI-generated content\.\*\*/);
    expect(text).toMatch(/AI-generated content[\s\S]*AI-generated content[\s\S]*## Provenance/);
    for (const s of atReport.steps) expect(text).toContain(`[step:${s.id}]`);
    const body = text.slice(text.indexOf(BODY_START) + BODY_START.length + 2, text.indexOf(BODY_END) - 2);
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(result.provenance.contentHash);
    const sidecar = JSON.parse(
      await fs.readFile(result.reportPath!.replace(/\.md$/, '.provenance.json'), 'utf8'),
    ) as unknown;
    // The same provenance, with the worker's signature (the workflow result carries none).
    expect(sidecar).toEqual({
      ...result.provenance,
      signature: { keyId: TEST_PUBLISHER.keyId, alg: 'ed25519', value: expect.any(String) },
    });

    // Step findings live in the artifact store, not in history; the API key is nowhere in history.
    const history = await historyText(handle);
    expect(history).toContain(QUESTION); // payloads are decoded: the scan can find what is there
    expect(history).not.toContain(API_KEY);
    expect(history).not.toContain('offline stand-in model, not a real model: it contains no real research');
  });
});

test('a rate-limited model call is retried after retry-after, and the task completes', async () => {
  standIn.inject({ status: 429, retryAfterSeconds: 1, tool: 'submit_findings' });
  await withWorker(ctx, await realActivities(), async (taskQueue) => {
    // fact-sheet: a fixed plan of three steps in a chain, only the report gate.
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('research'),
      args: [{ question: QUESTION, playbook: 'fact-sheet' }],
    });
    await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 60_000);
    await handle.signal(approve, { by: 'editor' });
    expect((await handle.result()).outcome).toBe('completed');
  });
  const stats = standIn.stats();
  expect(stats.errors).toBe(1);
  expect(stats.byTool.submit_findings).toBe(3 + 1); // the first step's call was made twice
  expect(stats.byTool.submit_plan).toBeUndefined(); // a fixed plan asks the lead nothing
});

test('a request the API refuses (400) fails the task at once with a message saying what to fix', async () => {
  standIn.inject({ status: 400, tool: 'submit_findings', count: 10 });
  await withWorker(ctx, await realActivities(), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('research'),
      args: [{ question: QUESTION, playbook: 'fact-sheet' }],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const message = (err as WorkflowFailedError).cause?.message ?? '';
    expect(message).toContain('step "gather" (agent "researcher") failed');
    expect(message).toContain('model API answered 400');
    expect(message).toContain("check the agent's model name and max tokens in config/agents.yaml");
    // Non-retryable: one attempt only, although the agent's policy allows five.
    expect(standIn.stats().byTool.submit_findings).toBe(1);
  });
});
