/**
 * The public contract of Baton's workflows: input, signals, queries and result.
 *
 * Defined once, here, and imported by the workflows, the CLI and the tests. The wire names are
 * what users type with the Temporal CLI (`temporal workflow signal --name approve ...`), so
 * they never change; each const has the same name as its wire name.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import { z } from 'zod';
import type { Plan } from '../config/schema';

// ---------------------------------------------------------------------------------------------------------
// Input

export const MAX_QUESTION_CHARS = 4000;

export const ResearchTaskInputSchema = z
  .object({
    question: z
      .string()
      .trim()
      .min(1, 'must not be empty')
      .max(MAX_QUESTION_CHARS, `must be at most ${MAX_QUESTION_CHARS} characters`),
    playbook: z
      .string()
      .regex(/^[a-z][a-z0-9-]{0,39}$/, 'must be a playbook id such as "research-brief"')
      .default('research-brief'),
  })
  .strict();
export type ResearchTaskInput = z.input<typeof ResearchTaskInputSchema>;

// ---------------------------------------------------------------------------------------------------------
// Signals

export const GATES = ['plan', 'report'] as const;
export type Gate = (typeof GATES)[number];

/** The payload of every decision signal. `gate` is optional: it defaults to the gate that is pending. */
export const DecisionPayloadSchema = z
  .object({
    by: z.string().trim().min(1, 'must name who decides').max(200),
    gate: z.enum(GATES).optional(),
    comment: z.string().max(10_000).optional(),
  })
  .strict();
export type DecisionPayload = z.infer<typeof DecisionPayloadSchema>;

export const approve = defineSignal<[DecisionPayload]>('approve');
export const reject = defineSignal<[DecisionPayload]>('reject');
export const requestChanges = defineSignal<[DecisionPayload]>('requestChanges');

export type DecisionKind = 'approve' | 'reject' | 'requestChanges' | 'timeout';

/** One decision as recorded: accepted or refused, never silently dropped. */
export interface DecisionRecord {
  kind: DecisionKind;
  /** Who decided; `system` for a timeout policy. */
  by: string;
  /** The gate the decision was meant for (or that was pending when it named none). */
  gate: Gate | null;
  comment?: string;
  /** Workflow time, ISO 8601. */
  at: string;
  accepted: boolean;
  /** Why a decision was refused. */
  reason?: string;
}

// ---------------------------------------------------------------------------------------------------------
// Status query

export type Phase =
  | 'loading-config'
  | 'planning'
  | 'awaiting-plan-approval'
  | 'executing'
  | 'synthesizing'
  | 'awaiting-report-approval'
  | 'publishing'
  | 'completed'
  | 'rejected'
  | 'failed';

export type StepState = 'pending' | 'running' | 'done' | 'failed';

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
}

/** A large text kept outside workflow history, by content address. */
export interface ArtifactRef {
  /** `sha256:<hex>` of the text. */
  id: string;
  bytes: number;
}

export interface Source {
  title: string;
  url?: string;
}

export interface StepStatus {
  id: string;
  agent: string;
  question: string;
  dependsOn: string[];
  decompose: boolean;
  state: StepState;
  /** Workflow id of the child task, for a decomposed step. */
  childWorkflowId?: string;
  summary?: string;
  sources?: Source[];
  result?: ArtifactRef;
  usage?: TokenUsage;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface PendingGate {
  gate: Gate;
  since: string;
  approvers: string[];
  deadline?: string;
}

export interface TaskStatus {
  workflowId: string;
  question: string;
  playbook: string;
  depth: number;
  phase: Phase;
  configDigest?: string;
  plan?: Plan;
  planAttempts: number;
  revisions: Record<Gate, number>;
  steps: StepStatus[];
  pendingGate?: PendingGate;
  /** Totals, children included, and per agent. */
  usage: TokenUsage & { byAgent: Record<string, TokenUsage> };
  decisions: DecisionRecord[];
  report?: { artifact: ArtifactRef; path?: string };
  error?: string;
}

export const status = defineQuery<TaskStatus>('status');

// ---------------------------------------------------------------------------------------------------------
// Results

/** Machine-readable provenance of a report: the implicit AI-generated label. */
export interface Provenance {
  generator: 'baton';
  aiGenerated: true;
  workflowId: string;
  runId: string;
  question: string;
  playbook: string;
  configDigest: string;
  agents: { id: string; model: string; role: string }[];
  usage: TokenUsage & { byAgent: Record<string, TokenUsage> };
  approvals: { gate: Gate; by: string; at: string; comment?: string }[];
  startedAt: string;
  finishedAt: string;
  /** sha256 of the report body between the labels, as `sha256:<hex>`. */
  contentHash?: string;
}

export interface ResearchTaskResult {
  outcome: 'completed' | 'rejected';
  workflowId: string;
  /** Path of the published Markdown report (absent when rejected before one existed). */
  reportPath?: string;
  report?: ArtifactRef;
  provenance: Provenance;
  decisions: DecisionRecord[];
}

/** Input of a child task that plans and delegates one level deeper. */
export interface SubtaskInput {
  question: string;
  depth: number;
  /** The parent's config snapshot: a running task never sees config change under it. */
  config: import('../config/schema').ConfigSnapshot;
}

export interface SubtaskResult {
  summary: string;
  result: ArtifactRef;
  sources: Source[];
  usage: TokenUsage & { byAgent: Record<string, TokenUsage> };
}
