/**
 * The activities' contract: what each activity takes and returns, and the schemas of what models
 * must answer. Workflows proxy {@link Activities} (types only); `activities/` implements it.
 */
import { z } from 'zod';
import type { AgentConfig, ConfigSnapshot, Plan, PlanLimits, SnapshotAgent } from '../config/schema';
import type { ArtifactRef, ChangeRequest, Provenance, ReportKind, Source, TokenUsage } from './messages';

/** A tool call Baton refused. Only the (clipped) name is kept: the input may carry anything. */
export interface RefusedToolCall {
  tool: string;
  reason: string;
}

/** A source a model cites: a title, and an address when it has one. */
export const SourceSchema = z
  .object({
    title: z.string().trim().min(1).max(300).describe('Title of the source.'),
    url: z.string().max(2000).optional().describe('Where the source can be found, if it has an address.'),
  })
  .strict();

/** What a specialist must return. The model fills it, so it is strict and described. */
export const FindingsSchema = z
  .object({
    summary: z.string().min(1).max(600).describe('Two or three sentences: the answer to the sub-question.'),
    findings: z
      .string()
      .min(1)
      .max(60_000)
      .describe('The findings in Markdown, with the reasoning and caveats.'),
    sources: z.array(SourceSchema).max(20).default([]).describe('Sources the findings rely on.'),
  })
  .strict();

/** What the lead returns when it synthesizes. */
export const ReportSchema = z
  .object({
    title: z.string().min(1).max(300).describe('Title of the report.'),
    summary: z.string().min(1).max(1000).describe('Executive summary in two to four sentences.'),
    markdown: z
      .string()
      .min(1)
      .max(200_000)
      .describe('The report body in Markdown, citing step results as [step:<id>].'),
  })
  .strict();

export interface PlanTaskInput {
  question: string;
  /** The lead as the task's snapshot holds it (with its model's price, for the cost estimate). */
  lead: SnapshotAgent;
  specialists: Pick<AgentConfig, 'id' | 'role'>[];
  limits: PlanLimits;
  change?: ChangeRequest;
  previousProblems?: string[];
}

/** Set only when the model called tools it was not offered (refused, never executed). */
export interface Refusals {
  refusedToolCalls?: RefusedToolCall[];
}

export type PlanTaskResult = { usage: TokenUsage; model: string } & Refusals &
  ({ valid: true; plan: Plan } | { valid: false; problems: string[] });

export interface StepInput {
  overallQuestion: string;
  step: { id: string; agent: string; question: string };
  agent: SnapshotAgent;
  /** Results of the steps this one depends on. */
  context: { id: string; agent: string; result: ArtifactRef }[];
  /** A reviewer's request, when the step runs again after report review. */
  change?: ChangeRequest;
}

export interface StepResult extends Refusals {
  summary: string;
  sources: Source[];
  result: ArtifactRef;
  usage: TokenUsage;
  model: string;
}

export interface SynthesisInput {
  question: string;
  lead: SnapshotAgent;
  steps: { id: string; agent: string; question: string; result: ArtifactRef; sources: Source[] }[];
  /** Steps that were skipped (failed under a skip policy, or not run for the token budget): the report says what is missing. */
  skipped?: { id: string; agent: string; question: string; reason: string }[];
  change?: ChangeRequest;
}

export interface SynthesisResult extends Refusals {
  title: string;
  summary: string;
  report: ArtifactRef;
  cited: string[];
  usage: TokenUsage;
  model: string;
}

export interface PublishInput {
  report: ArtifactRef;
  provenance: Provenance;
  /**
   * `final` after sign-off; `draft` for approvers to read before they decide; `partial` when a task
   * stops early. Absent (final) in activities scheduled by workflow code older than drafts.
   */
  kind?: ReportKind;
}

export interface PublishResult {
  path: string;
  contentHash: string;
}

/** Input of {@link Activities.assemblePartialReport}. */
export interface PartialReportInput {
  question: string;
  steps: { id: string; agent: string; question: string; result: ArtifactRef }[];
}

/** Every activity a workflow can schedule. */
export interface Activities {
  /** Loads and validates config, and returns what a task with this playbook needs, with the digest. */
  loadConfigSnapshot(playbookId: string): Promise<ConfigSnapshot>;
  /** Asks the lead for a plan and validates it, so only a checked plan or the problems enter history. */
  planTask(input: PlanTaskInput): Promise<PlanTaskResult>;
  /** One specialist step: the findings go to the artifact store, a summary and reference to history. */
  runSpecialist(input: StepInput): Promise<StepResult>;
  /** The lead writes the report from the step results; citations are checked against the steps. */
  synthesizeReport(input: SynthesisInput): Promise<SynthesisResult>;
  /** The findings of the finished steps under a note that the task stopped early (no model call). */
  assemblePartialReport(input: PartialReportInput): Promise<ArtifactRef>;
  /** Writes a report with its AI-generated labels and provenance. Idempotent. */
  publishReport(input: PublishInput): Promise<PublishResult>;
}
