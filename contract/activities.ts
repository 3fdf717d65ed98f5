/**
 * The activities' contract: what each activity takes and returns, and the schemas of what models
 * must answer. Workflows proxy {@link Activities} (types only); `activities/` implements it.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import { z } from 'zod';
import type { AgentConfig, ConfigSnapshot, Plan, PlanLimits, SnapshotAgent } from '../config/schema';
import { clipBytes, jsonBytes } from './bounds';
import { canonicalJson } from './canonical';
import type { McpActivities } from './mcp';
import type { RoundReviewInput, RoundReviewResult } from './rounds';
import type { CitationActivities } from './citations';
import type { TaskStateActivities } from './task-state';
import type { ToolLoopActivities } from './tool-loop';
import type {
  ArtifactRef,
  ChangeRequest,
  Provenance,
  ReportKind,
  Source,
  TaskDocument,
  TokenUsage,
} from './messages';

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
    document: z
      .string()
      .max(120)
      .optional()
      .describe("The name of one of the task's documents, when the source is that document."),
  })
  .strict();

/**
 * Byte caps on what a step keeps in its status, so that a `researchBatch` child's result (up to
 * `STEPS_PER_RUN` = 100 steps) stays well under Temporal's 2 MB payload limit (test/bounded.test.ts
 * computes the worst case). The findings themselves go to the artifact store, by reference.
 */
/** Sources a step keeps, at most: the schema's count, and this many bytes of JSON in all. */
export const MAX_SOURCES_PER_STEP = 20;
export const MAX_SOURCE_BYTES_PER_STEP = 6 * 1024;
/** Bytes of JSON a step's summary keeps (600 characters of plain text fit; a child's 1000 may not). */
export const MAX_STEP_SUMMARY_BYTES = 2 * 1024;
/** Bytes of JSON a failed step's error keeps. */
export const MAX_STEP_ERROR_BYTES = 1024;

/**
 * A step's sources within the caps: the first ones that fit, and a note saying so when some did
 * not (the step is not failed for it).
 */
export function boundSources(sources: Source[]): { sources: Source[]; sourcesNote?: string } {
  const kept: Source[] = [];
  let bytes = 2;
  for (const source of sources.slice(0, MAX_SOURCES_PER_STEP)) {
    const size = jsonBytes(source) + 1;
    if (bytes + size > MAX_SOURCE_BYTES_PER_STEP) break;
    bytes += size;
    kept.push(source);
  }
  if (kept.length === sources.length) return { sources, sourcesNote: undefined };
  return {
    sources: kept,
    sourcesNote: `sources clipped to ${kept.length} of ${sources.length} (at most ${MAX_SOURCES_PER_STEP}, ${MAX_SOURCE_BYTES_PER_STEP} bytes)`,
  };
}

/** What a step that finished keeps of its outcome: the summary and sources within the caps. */
export const boundedOutcome = (summary: string, sources: Source[]) => ({
  summary: clipBytes(summary, MAX_STEP_SUMMARY_BYTES),
  ...boundSources(sources),
});

/** A failed step's error within the cap. */
export const boundedError = (error: string): string => clipBytes(error, MAX_STEP_ERROR_BYTES);

/** What a specialist must return. The model fills it, so it is strict and described. */
export const FindingsSchema = z
  .object({
    summary: z.string().min(1).max(600).describe('Two or three sentences: the answer to the sub-question.'),
    findings: z
      .string()
      .min(1)
      .max(60_000)
      .describe('The findings in Markdown, with the reasoning and caveats.'),
    sources: z
      .array(SourceSchema)
      .max(MAX_SOURCES_PER_STEP)
      .default([])
      .describe('Sources the findings rely on.'),
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

/**
 * An agent by reference (v12, `agents-by-reference`): its id in the task's config snapshot, which
 * the loading (or checking) activity stored content-addressed in the artifact store, named by
 * {@link snapshotRefOf}. An activity resolves it there, so history does not repeat the agent's
 * config (system prompt, model, price, tools) in every call's input. `maxTokens` is given only when
 * the token budget lowered the agent's (`maxTokensPerStep`); it never raises it.
 */
export interface AgentRef {
  id: string;
  snapshot: string;
  maxTokens?: number;
}

/** What a model activity is given of its agent: a reference, or (scheduled before v12, or by a child given a narrowed copy of the snapshot) the agent itself. */
export type GivenAgent = AgentRef | SnapshotAgent;

export const AgentRefSchema = z
  .object({
    id: z.string().min(1).max(64),
    snapshot: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits'),
    maxTokens: z.number().int().min(1).max(10_000_000).optional(),
  })
  .strict();

/** Whether an activity was given its agent by reference (an inline agent has its config, no `snapshot`). */
export const isAgentRef = (agent: GivenAgent): agent is AgentRef => !('systemPrompt' in agent);

/**
 * The name of a config snapshot in the artifact store: the sha256 of its canonical JSON, seal
 * included, as `sha256:<hex>` (what activities/artifacts.ts `putArtifact` names that text). Pure:
 * workflow code computes it once a run.
 */
export const snapshotRefOf = (snapshot: ConfigSnapshot): string =>
  `sha256:${bytesToHex(sha256(utf8ToBytes(canonicalJson(snapshot))))}`;

export interface PlanTaskInput {
  question: string;
  /** The lead, by reference (v12) or as the task's snapshot holds it (with its model's price, for the cost estimate). */
  lead: GivenAgent;
  specialists: Pick<AgentConfig, 'id' | 'role'>[];
  limits: PlanLimits;
  change?: ChangeRequest;
  previousProblems?: string[];
  /** The task's documents, by reference (activities/documents.ts); absent without documents. */
  documents?: TaskDocument[];
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
  /** The specialist, by reference (v12) or inline, its `maxTokens` lowered by the step budget. */
  agent: GivenAgent;
  /** Results of the steps this one depends on. */
  context: { id: string; agent: string; result: ArtifactRef }[];
  /** A reviewer's request, when the step runs again after report review. */
  change?: ChangeRequest;
  /** The task's documents, by reference (activities/documents.ts); absent without documents. */
  documents?: TaskDocument[];
}

export interface StepResult extends Refusals {
  summary: string;
  sources: Source[];
  /**
   * The sources the step keeps (within the caps: {@link boundSources}) as a JSON artifact, for
   * synthesis to read by reference. Absent from results of activities older than v12.
   */
  sourcesRef?: ArtifactRef;
  /**
   * What the step's tools returned (contract/citations.ts), as a JSON artifact, and how many
   * retrievals it keeps: for the citation pass. Absent when they returned nothing.
   */
  retrievedRef?: ArtifactRef;
  retrieved?: number;
  result: ArtifactRef;
  usage: TokenUsage;
  model: string;
}

/**
 * A finished step as synthesis reads it: its findings by reference, and what its reference line
 * shows: its sources by reference (v12, a specialist's step) or inline (a decomposed step's, and
 * in inputs scheduled before v12).
 */
export interface SynthesisStep {
  id: string;
  agent: string;
  question: string;
  result: ArtifactRef;
  sources?: Source[];
  sourcesRef?: ArtifactRef;
}

/** Sources as a step's `sourcesRef` artifact holds them: what {@link boundSources} keeps. */
export const StoredSourcesSchema = z.array(SourceSchema).max(MAX_SOURCES_PER_STEP);

/**
 * Most steps one synthesis call reads, and most parts: a call's input (up to 6 KB of sources a
 * step when they are inline) stays well under Temporal's 2 MB payload limit. More are synthesized
 * in parts.
 */
export const STEPS_PER_SYNTHESIS = 50;

/**
 * A part of a hierarchical synthesis: the lead's summary of a group of steps (or of parts), which
 * cites them as [step:<id>], and the reference lines of the steps it covers.
 */
export interface SynthesisPart {
  /** The steps covered, as a label: `s1…s50 (50 steps)`. */
  label: string;
  /** The summary, in Markdown, citing the steps as [step:<id>]. */
  notes: ArtifactRef;
  /** JSON: each covered step's id and its reference line (agent, question, sources). */
  references: ArtifactRef;
  /** The ids of the steps covered. */
  steps: string[];
}

/** Input of {@link Activities.summarizeSteps}: a group of steps, or of parts. */
export interface SummaryInput {
  question: string;
  lead: GivenAgent;
  steps: SynthesisStep[];
  parts?: SynthesisPart[];
}

export interface SummaryResult extends Refusals {
  part: SynthesisPart;
  usage: TokenUsage;
  model: string;
}

export interface SynthesisInput {
  question: string;
  lead: GivenAgent;
  steps: SynthesisStep[];
  /** Instead of steps, when the steps were too many to read at once: the summaries of their groups. */
  parts?: SynthesisPart[];
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
  /**
   * What was published (the input's kind and report): since v18 `publishReport` is a local activity,
   * whose input history does not record, so its result says it (drafts read back for the inbox's
   * differences, the audit's history fallback). Absent in results recorded before.
   */
  kind?: ReportKind;
  report?: ArtifactRef;
}

/** Input of {@link Activities.assemblePartialReport}. */
export interface PartialReportInput {
  question: string;
  steps: { id: string; agent: string; question: string; result: ArtifactRef }[];
  /** Why the task stopped (absent in activities scheduled before v10: it was cancelled). */
  reason?: string;
}

/** How a child's snapshot was vouched for: by a seal (the key's id), or by this worker's own config. */
export type SnapshotCheck = { by: 'seal'; keyId: string } | { by: 'config' };

/**
 * Every activity a workflow can schedule (a task's state across continue-as-new: ./task-state.ts;
 * MCP tools: ./mcp.ts).
 */
export interface Activities
  extends TaskStateActivities, CitationActivities, McpActivities, ToolLoopActivities {
  /** Loads and validates config, and returns what a task with this playbook needs, with the digest. */
  loadConfigSnapshot(playbookId: string): Promise<ConfigSnapshot>;
  /**
   * Checks a child workflow's config snapshot before it makes any model call: on the allow-list
   * when there is one, and sealed by a known worker or identical to what this worker would load.
   * Refuses with a non-retryable `SnapshotRefused` naming the failed check.
   */
  checkSnapshot(snapshot: ConfigSnapshot): Promise<SnapshotCheck>;
  /** Asks the lead for a plan and validates it, so only a checked plan or the problems enter history. */
  planTask(input: PlanTaskInput): Promise<PlanTaskResult>;
  /** One specialist step: the findings go to the artifact store, a summary and reference to history. */
  runSpecialist(input: StepInput): Promise<StepResult>;
  /** The lead writes the report from the step results; citations are checked against the steps. */
  synthesizeReport(input: SynthesisInput): Promise<SynthesisResult>;
  /**
   * The lead summarizes a group of steps (or of parts) for a hierarchical synthesis, keeping their
   * [step:<id>] citations; refuses with `ContextTooLong` when the group does not fit its context.
   */
  summarizeSteps(input: SummaryInput): Promise<SummaryResult>;
  /**
   * The lead reviews the findings after a round (workflows/rounds.ts) and answers done or a plan
   * delta, checked like a plan (./rounds.ts), so only a checked answer or the problems enter history.
   */
  reviewRound(input: RoundReviewInput): Promise<RoundReviewResult>;
  /** The findings of the finished steps under a note that the task stopped early (no model call). */
  assemblePartialReport(input: PartialReportInput): Promise<ArtifactRef>;
  /** Writes a report with its AI-generated labels and provenance. Idempotent. */
  publishReport(input: PublishInput): Promise<PublishResult>;
}
