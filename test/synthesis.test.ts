/**
 * Synthesis that fits the lead's context window (issue 15, item 3), on the real dev server with
 * real workers and the real SDK against the stand-in, which refuses an oversized prompt as the API
 * does: a plan too large to read at once is synthesized from summaries of groups of its steps, a
 * group that does not fit is split further, and a context-length refusal never fails a task whose
 * steps are done.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { createActivities } from '../activities';
import { getArtifact } from '../activities/artifacts';
import type { ActivityOptions } from '../activities/options';
import { openStores } from '../activities/store';
import type { Plan } from '../config/schema';
import { startStandIn, type StandIn } from '../standin/server';
import { researchTask } from '../workflows';
import { FIXTURE_CONFIG, tempActivityOptions, uniqueId, useTestServer, withWorker } from './helpers';

const ctx = useTestServer();

let standIn: StandIn | undefined;
afterEach(async () => {
  await standIn?.close();
  standIn = undefined;
});

/** n independent steps, each question padded to `pad` characters. */
const planOf = (n: number, pad = 0): Plan => ({
  rationale: 'Many angles.',
  steps: Array.from({ length: n }, (_, i) => ({
    id: `s${i + 1}`,
    agent: i % 2 ? 'analyst' : 'researcher',
    question: `Angle ${i + 1} of the question.`.padEnd(pad, ' Say more.'),
    dependsOn: [],
    decompose: false,
  })),
});

/** The fixture config plus a playbook `wide` with the plan of n steps fixed, and the stand-in's address. */
async function wideConfig(n: number, contextWindow?: number, pad = 0): Promise<ActivityOptions> {
  standIn = await startStandIn(contextWindow ? { contextTokens: contextWindow } : {});
  const options = await tempActivityOptions();
  const configDir = path.join(path.dirname(options.artifactDir), 'config');
  await fs.cp(FIXTURE_CONFIG, configDir, { recursive: true });
  await fs.writeFile(
    path.join(configDir, 'playbooks', 'wide.yaml'),
    [
      'id: wide',
      'description: Many independent steps.',
      'agents: [researcher, analyst]',
      `limits: { maxSteps: ${n}, maxDepth: 0, maxParallel: 100 }`,
      `fixedPlan: ${JSON.stringify(planOf(n, pad))}`,
      '',
    ].join('\n'),
  );
  return { ...options, configDir, baseURL: standIn.url };
}

/** Runs the `wide` task to its end and returns the report's text and the synthesis calls made. */
async function runWide(options: ActivityOptions, question = 'What is everything made of?') {
  return withWorker(ctx, createActivities(options), async (taskQueue) => {
    const handle = await ctx.client.workflow.start(researchTask, {
      taskQueue,
      workflowId: uniqueId('synthesis'),
      args: [{ question, playbook: 'wide' }],
    });
    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    const report = await getArtifact(openStores(options).artifacts, result.report!.id);
    const history = await handle.fetchHistory();
    const scheduled = history.events!.flatMap((e) => {
      const name = e.activityTaskScheduledEventAttributes?.activityType?.name;
      return name === 'summarizeSteps' || name === 'synthesizeReport' ? [name] : [];
    });
    return { report, scheduled };
  });
}

/** The step ids the report's References list. */
const referenced = (report: string): string[] =>
  [...report.split('## References')[1]!.matchAll(/^- \*\*\[step:([\w-]+)\]\*\*/gm)].map((m) => m[1]!);

test('a fixed plan of 1,000 steps ends with a report citing every step, synthesized from summaries of groups of 50', async () => {
  const options = await wideConfig(1000);
  const { report, scheduled } = await runWide(options);
  // 20 groups of 50 steps, then the report over the 20 summaries.
  expect(scheduled.filter((n) => n === 'summarizeSteps')).toHaveLength(20);
  expect(scheduled.filter((n) => n === 'synthesizeReport')).toHaveLength(1);
  expect(report).toContain('## Findings by part');
  expect(report).toContain('### Steps s1…s50 (50 steps)');
  expect(referenced(report).sort()).toEqual(
    planOf(1000)
      .steps.map((s) => s.id)
      .sort(),
  );
  expect(report).not.toContain('cites steps that do not exist');
  // No call went over the stand-in's 200,000-token window: each was measured first.
  expect(standIn!.stats().errors).toBe(0);
}, 600_000);

test('a context-length 400 does not fail the task: the steps are split, and a half that still does not fit is split again', async () => {
  // The lead's config keeps the default window (200,000 tokens), so Baton's own count lets every
  // prompt through and the stand-in's smaller window refuses: the API's 400, as a real model
  // with a smaller window than configured would.
  // Long questions make long findings (the stand-in repeats both), so that 20 steps do not fit a
  // window of 6,000 tokens (1,000 of them for the answer) while 10 do, and so does the report over
  // four summaries of 10 (the stand-in's summaries quote each step briefly).
  const options = await wideConfig(40, 6_000, 280);
  const { report, scheduled } = await runWide(
    options,
    'What is everything made of? '.padEnd(300, 'And why? '),
  );
  expect(standIn!.stats().errors).toBeGreaterThan(0);
  // The 40 steps do not fit; neither do halves of 20; quarters of 10 do.
  expect(scheduled[0]).toBe('synthesizeReport');
  expect(scheduled.filter((n) => n === 'summarizeSteps').length).toBeGreaterThanOrEqual(2 + 4);
  expect(report).toContain('### Steps s1…s10 (10 steps)');
  expect(report).not.toContain('### Steps s1…s20 (20 steps)');
  expect(referenced(report).sort()).toEqual(
    planOf(40)
      .steps.map((s) => s.id)
      .sort(),
  );
}, 300_000);

test("the lead's contextTokens is measured before the call: an oversized synthesis is split as the count says, with no request refused", async () => {
  // The stand-in keeps its 200,000-token window; config says the lead has 6,000. The token count
  // (40 long steps: about 11,500 tokens) splits the steps into as many groups as fit 5,000 tokens.
  const options = await wideConfig(40, undefined, 280);
  const agents = path.join(options.configDir, 'agents.yaml');
  const yaml = await fs.readFile(agents, 'utf8');
  await fs.writeFile(
    agents,
    yaml.replace('    maxTokens: 1000\n', '    maxTokens: 1000\n    contextTokens: 6000\n'),
  );
  const { report, scheduled } = await runWide(
    options,
    'What is everything made of? '.padEnd(300, 'And why? '),
  );
  expect(standIn!.stats().errors).toBe(0);
  expect(scheduled).toEqual([
    'synthesizeReport',
    'summarizeSteps',
    'summarizeSteps',
    'summarizeSteps',
    'synthesizeReport',
  ]);
  expect(report).toContain('### Steps s1…s14 (14 steps)');
  expect(referenced(report).sort()).toEqual(
    planOf(40)
      .steps.map((s) => s.id)
      .sort(),
  );
}, 300_000);
