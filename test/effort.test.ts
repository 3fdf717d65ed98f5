/**
 * Effort scaling: the lead's effortRule (config/agents.yaml) goes with every planning request, and
 * a plan sized by it stays within the playbook: one step for a simple fact, one gathering step per
 * thing in a broad comparison, all in parallel. The stand-in plays a lead that follows the rule.
 */
import path from 'node:path';
import { createActivities } from '../activities';
import { loadConfig } from '../activities/config';
import { planPrompt } from '../activities/prompts';
import { PROJECT_ROOT } from '../activities/options';
import { checkPlan } from '../config/schema';
import { effortFor } from '../standin/replies';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { approve } from '../contract/messages';
import { tempActivityOptions, uniqueId, useTestServer, waitForStatus, withWorker } from './helpers';

const CONFIG = path.join(PROJECT_ROOT, 'config');
const ctx = useTestServer();
let standIn: StandIn;
const planRequests: string[] = [];

beforeAll(async () => {
  standIn = await startStandIn({
    respond: (req) => {
      if (req.toolName === 'submit_plan') planRequests.push(req.userText);
      return undefined; // the stand-in's own answers
    },
  });
});
afterAll(async () => {
  await standIn?.close();
});

test('the lead is given its effort rule from config, as instructions, with every planning request', async () => {
  const { effortRule } = (await loadConfig(CONFIG)).agents.agents.find((a) => a.id === 'lead')!;
  expect(effortRule).toMatch(/simple fact/);
  const limits = { allowedAgents: ['researcher'], maxSteps: 8, depth: 0, maxDepth: 1 };
  const prompt = planPrompt({ question: 'Q?', limits, specialists: [], effortRule });
  expect(prompt).toContain('- Size the plan to the question, by this rule:\n  A simple fact');
  // Outside the quoted question: it is reviewed config, not user data.
  expect(prompt.indexOf('by this rule')).toBeLessThan(prompt.indexOf('<question>'));
  expect(planPrompt({ question: 'Q?', limits, specialists: [] })).not.toContain('by this rule');
});

test.each([
  ['What is the boiling point of ethanol?', 'fact'],
  ['Who was the first person on the Moon?', 'fact'],
  ['What is the impact of remote work on productivity?', 'focused'],
  ['How do solid-state batteries compare with lithium-ion for EVs?', 'focused'],
  ['Compare heat pumps, gas boilers, district heating and resistance heaters on cost', 'comparison'],
])('the stand-in lead reads "%s" as a %s question', (question, kind) => {
  expect(effortFor(question).kind).toBe(kind);
});

describe('through the workflow, with the real config and the research-brief playbook', () => {
  async function plan(question: string) {
    planRequests.length = 0;
    standIn.resetStats();
    const options = { ...(await tempActivityOptions(CONFIG)), apiKey: 'k', baseURL: standIn.url };
    const { playbooks } = await loadConfig(CONFIG);
    const limits = playbooks['research-brief']!.limits;
    return withWorker(ctx, createActivities(options), async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('effort'),
        args: [{ question }],
      });
      const atPlan = await waitForStatus(handle, (s) => s.pendingGate?.gate === 'plan', 'the plan gate');
      const problems = checkPlan(atPlan.plan!, {
        allowedAgents: playbooks['research-brief']!.agents,
        maxSteps: limits.maxSteps,
        depth: 0,
        maxDepth: limits.maxDepth,
      });
      await handle.signal(approve, { by: 'tester', gate: 'plan' });
      await waitForStatus(handle, (s) => s.pendingGate?.gate === 'report', 'the report gate', 60_000);
      await handle.signal(approve, { by: 'tester', gate: 'report' });
      await handle.result();
      return { plan: atPlan.plan!, problems, calls: standIn.stats().byTool, maxSteps: limits.maxSteps };
    });
  }

  test('a simple fact gets one researcher step: one specialist call', async () => {
    const { plan: p, problems, calls } = await plan('What is the boiling point of ethanol?');
    expect(problems).toEqual([]);
    expect(p.steps.map((s) => [s.agent, s.dependsOn, s.decompose])).toEqual([['researcher', [], false]]);
    expect(calls).toEqual({ submit_plan: 1, submit_findings: 1, submit_report: 1 });
    expect(planRequests[0]).toContain('Size the plan to the question, by this rule:');
  });

  test('a broad comparison gets one parallel gathering step per thing, within the playbook', async () => {
    const {
      plan: p,
      problems,
      calls,
      maxSteps,
    } = await plan(
      'Compare heat pumps, gas boilers, district heating, pellet stoves and resistance heaters on cost',
    );
    expect(problems).toEqual([]);
    const gathering = p.steps.filter((s) => s.dependsOn.length === 0);
    expect(gathering.map((s) => s.question)).toEqual([
      expect.stringContaining('heat pumps'),
      expect.stringContaining('gas boilers'),
      expect.stringContaining('district heating'),
      expect.stringContaining('pellet stoves'),
      expect.stringContaining('resistance heaters'),
    ]);
    expect(p.steps.length).toBeLessThanOrEqual(maxSteps);
    // The analysis reads all of them.
    expect(p.steps.some((s) => gathering.every((g) => s.dependsOn.includes(g.id)))).toBe(true);
    expect(calls.submit_findings).toBe(p.steps.length);
  });
});
