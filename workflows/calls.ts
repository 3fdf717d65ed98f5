/**
 * Every activity the research workflows call, with its options and its Web UI summary.
 *
 * Two kinds of options: bookkeeping (config, publishing, the citation pass: quick local I/O, one set
 * of options for every task), and model calls, which run with the calling agent's own timeouts and
 * retry policy from config (known only at run time, so {@link withAgent} makes that agent's proxy).
 * Since v18 (`bookkeeping-local-activities`, {@link bookkeepingProxy}) bookkeeping runs as local
 * activities, in the worker that runs the workflow; model calls stay activities.
 *
 * Each call carries a one-line summary made from the call itself (`s2 · analyst: Weigh A against
 * B`), passed per call with `executeWithOptions`; the Temporal Web UI shows it in the timeline and
 * `temporal workflow describe` prints it. A summary is user metadata: replay does not compare it,
 * so its wording may change without a patch (docs/architecture.md, "Versioning").
 */
import {
  patched,
  proxyActivities,
  proxyLocalActivities,
  workflowInfo,
  type ActivityInterfaceFor,
  type ActivityOptions,
  type LocalActivityInterfaceFor,
} from '@temporalio/workflow';
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

/** v18: bookkeeping runs as local activities, not through the server. */
export const BOOKKEEPING_LOCAL = 'bookkeeping-local-activities';

/**
 * Bookkeeping's options, the same for both kinds: a minute per attempt, five attempts 1, 2, 4 and 8 s
 * apart. A local activity's retries wait in the worker (each backoff is under the SDK's
 * `localRetryThreshold` of a minute), its workflow task kept open meanwhile (the SDK heartbeats it).
 * No heartbeat timeout: bookkeeping never heartbeats, and a local activity cannot.
 */
const BOOKKEEPING_OPTIONS = {
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
} as const;

/**
 * The proxy a bookkeeping call takes, asked at each call: before v18 an activity through the server
 * (a round trip, six history events and one more workflow task, for a few milliseconds of work);
 * since, a local activity, run by the worker that runs the workflow and recorded as one
 * `MarkerRecorded` event (its input is not in history, its result is, through the data converter
 * and so the codec). A run started before v18 keeps activities for the calls its history holds and
 * takes local activities after (`patched` semantics).
 */
export function bookkeepingProxy<A>(): () => ActivityInterfaceFor<A> | LocalActivityInterfaceFor<A> {
  const remote = proxyActivities<A>(BOOKKEEPING_OPTIONS);
  const local = proxyLocalActivities<A>(BOOKKEEPING_OPTIONS);
  return () => (patched(BOOKKEEPING_LOCAL) ? local : remote);
}

/** Bookkeeping (config, publishing): quick, local I/O. */
const bookkeeping = bookkeepingProxy<Activities>();

/** Model calls take the agent's own timeouts and retry policy from config. */
const withAgent = (agent: AgentConfig) =>
  proxyActivities<Activities>({
    startToCloseTimeout: agent.timeouts.startToClose,
    heartbeatTimeout: agent.timeouts.heartbeat,
    retry: { ...agent.retry },
  });

/** Loads and checks config: what a task with this playbook needs. */
export const loadConfigSnapshot = (playbook: string) =>
  bookkeeping().loadConfigSnapshot.executeWithOptions(summary(`config · playbook ${playbook}`), [playbook]);

/** A child's config snapshot checked by the worker, before the child makes any model call. */
export const checkSnapshot = (snapshot: ConfigSnapshot) =>
  bookkeeping().checkSnapshot.executeWithOptions(summary(`config · check snapshot ${snapshot.digest}`), [
    snapshot,
  ]);

/** Writes a report (draft, final or partial) with its provenance. */
export const publishReport = (input: PublishInput) =>
  bookkeeping().publishReport.executeWithOptions(summary(`publish · ${input.kind ?? 'final'} report`), [
    input,
  ]);

/** Puts the finished steps' findings together when a task stops before its report. */
export const assemblePartialReport = (input: PartialReportInput) =>
  bookkeeping().assemblePartialReport.executeWithOptions(summary('publish · assemble partial report'), [
    input,
  ]);

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
