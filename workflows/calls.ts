/**
 * Every activity the research workflows call, with its options and its Web UI summary.
 *
 * Two kinds of options, so two proxies: bookkeeping (config, publishing: quick local I/O, one set
 * of options for every task), and model calls, which run with the calling agent's own timeouts and
 * retry policy from config (known only at run time, so {@link withAgent} makes that agent's proxy).
 *
 * Each call carries a one-line summary made from the call itself (`s2 · analyst: Weigh A against
 * B`), passed per call with `executeWithOptions`; the Temporal Web UI shows it in the timeline and
 * `temporal workflow describe` prints it. A summary is user metadata: replay does not compare it,
 * so its wording may change without a patch (docs/architecture.md, "Versioning").
 */
import { proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type {
  Activities,
  PartialReportInput,
  PlanTaskInput,
  PublishInput,
  StepInput,
  SummaryInput,
  SynthesisInput,
} from '../contract/activities';
import type { StepStatus } from '../contract/messages';
import type { AgentConfig, ConfigSnapshot } from '../config/schema';

/** Text as one line of at most `max` characters, for a summary in the Temporal Web UI. */
export function summaryText(text: string, max = 200): string {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}

const summary = (text: string): ActivityOptions => ({ summary: summaryText(text) });

/** Bookkeeping (config, publishing): quick, local I/O. */
const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

/** Model calls take the agent's own timeouts and retry policy from config. */
const withAgent = (agent: AgentConfig) =>
  proxyActivities<Activities>({
    startToCloseTimeout: agent.timeouts.startToClose,
    heartbeatTimeout: agent.timeouts.heartbeat,
    retry: { ...agent.retry },
  });

/** Loads and checks config: what a task with this playbook needs. */
export const loadConfigSnapshot = (playbook: string) =>
  bookkeeping.loadConfigSnapshot.executeWithOptions(summary(`config · playbook ${playbook}`), [playbook]);

/** A child's config snapshot checked by the worker, before the child makes any model call. */
export const checkSnapshot = (snapshot: ConfigSnapshot) =>
  bookkeeping.checkSnapshot.executeWithOptions(summary(`config · check snapshot ${snapshot.digest}`), [
    snapshot,
  ]);

/** Writes a report (draft, final or partial) with its provenance. */
export const publishReport = (input: PublishInput) =>
  bookkeeping.publishReport.executeWithOptions(summary(`publish · ${input.kind ?? 'final'} report`), [input]);

/** Puts the finished steps' findings together when a task stops before its report. */
export const assemblePartialReport = (input: PartialReportInput) =>
  bookkeeping.assemblePartialReport.executeWithOptions(summary('publish · assemble partial report'), [input]);

/** The lead plans (again, after a change request or an invalid plan). */
export function planTask(lead: AgentConfig, input: PlanTaskInput) {
  const why = input.change
    ? ' · changes requested'
    : input.previousProblems?.length
      ? ' · after an invalid plan'
      : '';
  return withAgent(lead).planTask.executeWithOptions(summary(`plan · ${lead.id}${why}`), [input]);
}

/** A specialist runs one step. */
export function runSpecialist(agent: AgentConfig, input: StepInput) {
  const { step, change } = input;
  const text = `${step.id} · ${agent.id}${change ? ' (changes requested)' : ''}: ${step.question}`;
  return withAgent(agent).runSpecialist.executeWithOptions(summary(text), [input]);
}

/** The lead writes the report from the finished steps. */
export function synthesizeReport(lead: AgentConfig, input: SynthesisInput) {
  const text = `synthesize · ${lead.id}${input.change ? ' · changes requested' : ''}`;
  return withAgent(lead).synthesizeReport.executeWithOptions(summary(text), [input]);
}

/** The lead summarizes a group of steps (or of parts) of a plan too large to synthesize at once. */
export function summarizeSteps(lead: AgentConfig, input: SummaryInput) {
  const ids = [...input.steps.map((s) => s.id), ...(input.parts ?? []).flatMap((p) => p.steps)];
  const text = `synthesize · ${lead.id} · part ${ids[0]}…${ids.at(-1)} (${ids.length} steps)`;
  return withAgent(lead).summarizeSteps.executeWithOptions(summary(text), [input]);
}

/** What the Web UI shows of a decomposed step's child task: the step, its agent and its question. */
export function childSummary(
  step: StepStatus,
  question: string,
  depth: number,
): { staticSummary: string; staticDetails: string } {
  return {
    staticSummary: summaryText(`${step.id} · ${step.agent}: ${step.question}`),
    staticDetails: `**Step ${step.id}** of \`${workflowInfo().workflowId}\` (agent ${step.agent}, depth ${depth}), planned again one level deeper.\n\n**Question:** ${question}`,
  };
}
