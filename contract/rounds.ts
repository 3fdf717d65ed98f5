/**
 * Research rounds (workflows/rounds.ts): after the planned steps finish, the lead reviews the
 * findings and answers done, or a plan delta (new steps, and why). Here: what the review activity
 * takes and returns, the answer's schema, the checks a delta must pass (run by the activity and
 * again by the workflow, as a plan's are), and the bounds on what a round keeps.
 */
import { z } from 'zod';
import { checkPlan, PlanStepSchema, type AgentConfig, type PlanStep } from '../config/schema';
import type { GivenAgent, Refusals, SynthesisInput, SynthesisStep } from './activities';
import { clipBytes, STEPS_PER_RUN } from './bounds';
import type { ChangeRequest, TokenUsage } from './messages';

/** Characters of the lead's reason the answer may hold; bytes of it a round keeps in status. */
export const MAX_ROUND_REASON_CHARS = 2000;
export const MAX_ROUND_REASON_BYTES = 1024;
/** Bytes of the problems (or the failure) a round that ended the rounds keeps. */
export const MAX_ROUND_PROBLEMS_BYTES = 2048;
/** Bytes of JSON the step questions and summaries a review is given may weigh together. */
export const MAX_REVIEW_TEXT_BYTES = 400 * 1024;

/** What the lead answers when it reviews a round: done, or the steps of a delta. */
export const RoundAnswerSchema = z
  .object({
    done: z
      .boolean()
      .describe(
        'True when the findings answer the question as well as it needs; false to add a round of new steps.',
      ),
    reason: z
      .string()
      .min(1)
      .max(MAX_ROUND_REASON_CHARS)
      .describe(
        'Why: what the findings establish, or the gap the new steps fill, in two or three sentences.',
      ),
    steps: z
      .array(PlanStepSchema)
      .max(STEPS_PER_RUN)
      .default([])
      .describe(
        'With done false, the new steps: new ids; dependsOn may name earlier steps and new ones. Empty when done.',
      ),
  })
  .strict();
export type RoundAnswer = z.infer<typeof RoundAnswerSchema>;

/**
 * What a delta must obey, besides the plan rules (declared agents, unique ids, known
 * dependencies, no cycle): computed by the workflow from the playbook and the task so far.
 */
export interface DeltaLimits {
  /** The specialists the playbook allows. */
  allowedAgents: readonly string[];
  /** Most steps one delta adds: the playbook's maxSteps, and at most STEPS_PER_RUN (a round runs in the task's own run). */
  maxSteps: number;
  /** Steps maxTotalSteps leaves after every step so far (decomposed steps' shares included); absent without the bound. */
  totalLeft?: number;
  /** Steps the token budget leaves room for, at the average step so far, the synthesis still to come; absent without a budget or an estimate. */
  budgetLeft?: number;
  /** Ids of the steps so far: a new step's dependsOn may name them, its id may not be one. */
  earlier: string[];
}

/** The most steps a delta may add now, every limit taken together. */
export const deltaRoom = (limits: DeltaLimits): number =>
  Math.min(limits.maxSteps, limits.totalLeft ?? Infinity, limits.budgetLeft ?? Infinity);

/**
 * Checks a delta's steps like a plan (config/plan.ts `checkPlan`: declared agents, maxSteps,
 * unique ids, known dependencies, no cycle), and against the task so far: new ids, no
 * decomposition, maxTotalSteps across the task and its earlier rounds, and the token budget.
 * Earlier steps are settled, so depending on one is allowed and cannot close a cycle. Returns every
 * problem (none: the delta is valid).
 */
export function deltaProblems(steps: readonly PlanStep[], limits: DeltaLimits): string[] {
  const problems: string[] = [];
  const earlier = new Set(limits.earlier);
  if (limits.totalLeft !== undefined && steps.length > limits.totalLeft)
    problems.push(
      `the delta adds ${steps.length} steps; maxTotalSteps leaves ${limits.totalLeft} after the task's steps so far`,
    );
  if (limits.budgetLeft !== undefined && steps.length > limits.budgetLeft)
    problems.push(
      `the delta adds ${steps.length} steps; the token budget leaves room for ${limits.budgetLeft} more at the average step so far`,
    );
  steps.forEach((step, i) => {
    const where = `steps[${i}] ("${step.id}")`;
    if (earlier.has(step.id)) problems.push(`${where}: the id is an earlier step's; give it a new one`);
    if (step.decompose) problems.push(`${where}: a round's steps do not decompose; set decompose to false`);
  });
  const own = steps.map((s) => ({
    ...s,
    decompose: false,
    dependsOn: s.dependsOn.filter((d) => !earlier.has(d)),
  }));
  const limitsAsPlan = {
    allowedAgents: limits.allowedAgents,
    maxSteps: limits.maxSteps,
    depth: 0,
    maxDepth: 0,
  };
  problems.push(...checkPlan({ rationale: '', steps: own }, limitsAsPlan));
  return problems;
}

/** An answer's problems: a delta's ({@link deltaProblems}), or an answer whose `done` and steps disagree. */
export function answerProblems(answer: RoundAnswer, limits: DeltaLimits): string[] {
  if (answer.done)
    return answer.steps.length ? ['done is true but steps are given: give no steps when done'] : [];
  if (!answer.steps.length) return ['done is false but no steps are given: give the new steps, or done true'];
  return deltaProblems(answer.steps, limits);
}

/** A finished step as a review reads it: its findings by reference (synthesis's shape), summary, dependencies and round. */
export type ReviewStep = Omit<SynthesisStep, 'sources'> & {
  summary?: string;
  dependsOn: string[];
  /** 1 for the plan's steps. */
  round: number;
};

/** Input of the `reviewRound` activity. */
export interface RoundReviewInput {
  question: string;
  lead: GivenAgent;
  /** The round a delta would start: 2 for the first (round 1 is the approved plan). */
  round: number;
  /** The last round the playbook allows: 1 + rounds.max. */
  lastRound: number;
  steps: ReviewStep[];
  /** Steps that did not finish, and why (synthesis's `skipped`). */
  skipped: NonNullable<SynthesisInput['skipped']>;
  specialists: Pick<AgentConfig, 'id' | 'role'>[];
  limits: DeltaLimits;
  /** A reviewer's request for changes to the previous delta, at the plan gate. */
  change?: ChangeRequest;
  previousProblems?: string[];
}

export type RoundReviewResult = { usage: TokenUsage; model: string } & Refusals &
  ({ valid: true; answer: RoundAnswer } | { valid: false; problems: string[] });

/** A round's reason as status and provenance keep it. */
export const boundedReason = (reason: string): string => clipBytes(reason, MAX_ROUND_REASON_BYTES);
