/**
 * The audit export's record (format `baton-audit/1`): its shape, and the shape of what it is built
 * from (what Temporal answered: describe, the `status` query, the workflow result, the event history;
 * and the published report file).
 *
 * `cli/audit-collect.ts` gathers the sources, `cli/audit-build.ts` builds the record from them (which
 * source wins, what is missing and why), `cli/audit-verify.ts` checks a report file: its structure,
 * content hash and publisher signature.
 */
import type { CitationCheck } from './audit-citations';
import type { Plan, Publisher } from '../config/schema';
import type { approvalsWithChecks } from './audit-approvals';
import type {
  ArtifactRef,
  AuditEntry,
  PendingGate,
  Phase,
  Provenance,
  ReportKind,
  ResearchTaskResult,
  Source,
  StepState,
  TaskStatus,
  TokenUsage,
} from '../contract/messages';

/** The format of the export; a change that removes or renames a field gets a new number. */
export const AUDIT_FORMAT = 'baton-audit/1';

/** What one source answered, or why it did not. */
export type Answer<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The publishers whose signatures are accepted, and where they are listed. */
export type Publishers = Answer<{ list: Publisher[]; from: string }>;

export type Usage = TokenUsage & { byAgent: Record<string, TokenUsage> };

// ---------------------------------------------------------------------------------------------------------
// Inputs

/** The execution as `describe()` reports it (times as ISO 8601). */
export interface ExecutionFacts {
  namespace: string;
  workflowId: string;
  runId: string;
  type: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, … */
  status: string;
  taskQueue: string;
  startTime: string;
  executionTime: string | null;
  closeTime: string | null;
  historyLength: number;
  /** The parent task, for a child (`<id>/step-<step>`). */
  parent: { workflowId: string; runId: string } | null;
}

/** One run of a step as the event history records it: a specialist activity or a child task. */
/** One run of a step as the event history records it: a specialist activity or a child task. */
export interface StepRun {
  step: string;
  agent: string | null;
  question: string | null;
  via: 'activity' | 'child workflow';
  childWorkflowId: string | null;
  scheduledAt: string;
  closedAt: string | null;
  outcome: 'running' | 'completed' | 'failed' | 'timed-out' | 'cancelled' | 'terminated';
  summary: string | null;
  sources: Source[] | null;
  usage: TokenUsage | null;
  /** The model the API reported for the call (activities only). */
  model: string | null;
  error: string | null;
}

/** What the event history holds, read without a worker. */
export interface HistoryFacts {
  events: number;
  /** The workflow's input as started. */
  input: { question: string | null; playbook: string | null } | null;
  /** The config snapshot the task loaded at its start (the `loadConfigSnapshot` activity's result). */
  config: {
    digest: string;
    playbook: string;
    lead: string;
    agents: { id: string; model: string; role: string }[];
    gates: unknown;
    fixedPlan: Plan | null;
  } | null;
  /** Every answer of the planner, valid or not. */
  plans: {
    at: string;
    valid: boolean;
    plan: Plan | null;
    problems: string[] | null;
    model: string | null;
    usage: TokenUsage | null;
  }[];
  /** Token usage summed from the activity and child results, per agent, as the workflow sums it. */
  usage: Usage;
  /** The model names the API reported for each agent's calls. */
  modelsAnswered: Record<string, string[]>;
  /** Decision signals as delivered (accepted or refused: only the workflow's audit trail says which). */
  signals: { at: string; name: string; payload: unknown; identity: string | null }[];
  /** `decide` Updates the workflow admitted (an Update its validator refused leaves no event). */
  updates: {
    at: string;
    name: string;
    updateId: string;
    identity: string | null;
    request: unknown;
    result: unknown;
    failure: string | null;
  }[];
  stepRuns: StepRun[];
  /** Every report file written by `publishReport`: drafts, the final report, a partial report. */
  publications: { at: string; kind: ReportKind; path: string; contentHash: string }[];
  /** How the run ended, if it has. */
  close: { at: string; event: string; failure: string | null } | null;
}

/** A report file as read from disk (with the provenance file written beside it). */
export interface ReportFiles {
  path: string;
  text: Answer<string>;
  provenancePath: string;
  provenanceText: Answer<string>;
}

export interface AuditSources {
  exportedAt: string;
  execution: ExecutionFacts;
  status: Answer<TaskStatus>;
  /** The workflow result: present for a completed run; for a running one, the reason is "still running". */
  result: Answer<ResearchTaskResult>;
  history: Answer<HistoryFacts>;
  /** The report file chosen by `reportTarget` (or given with `--report`), once read. */
  reportFiles?: ReportFiles;
  /** The publisher keys whose signatures verify (config/publishers.yaml), or why they could not be read. */
  publishers?: Publishers;
}

// ---------------------------------------------------------------------------------------------------------
// The record

export interface StepRecord {
  id: string;
  agent: string;
  /** The agent's model, from {@link AuditRecord.models}. */
  model: string | null;
  question: string;
  dependsOn: string[];
  decompose: boolean;
  state: StepState;
  revision: number;
  attempt: number | null;
  summary: string | null;
  sources: Source[];
  result: ArtifactRef | null;
  usage: TokenUsage | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  /** Every child task the step ran as (a re-run gets its own), oldest first. */
  childWorkflowIds: string[];
  error: string | null;
}

export interface ModelRecord {
  model: string;
  role: string | null;
  lead: boolean;
  /** Where the model name comes from. */
  from: 'provenance' | 'config snapshot';
  /** Model names the API reported in this agent's answers (from the event history). */
  answeredAs: string[];
}

/**
 * `match`, or the first check that failed: `label` (text outside the body is not what Baton writes
 * for the file's provenance), `mismatch` (the body, or the provenance's content hash), `unsigned`,
 * `unknown-key` (signed by a key config does not list), `bad-signature`, `no-publishers` (the list of
 * publisher keys could not be read).
 */
export type VerificationCheck =
  | 'match'
  | 'mismatch'
  | 'no-report'
  | 'unreadable'
  | 'malformed'
  | 'label'
  | 'no-expected-hash'
  | 'unsigned'
  | 'unknown-key'
  | 'bad-signature'
  | 'no-publishers';

export interface Verification {
  verified: boolean;
  check: VerificationCheck;
  reason: string;
  file: string | null;
  kind: ReportKind | null;
  /** The content hash recorded in Temporal (or, failing that, in the file), as `sha256:<hex>`. */
  expected: string | null;
  expectedFrom: string | null;
  /** sha256 of the text between the body markers of the file. */
  actual: string | null;
  /** The publisher's signature on the file's provenance, once the body verified (null before). */
  signature: { verified: boolean; keyId: string | null; publisher: string | null; reason: string } | null;
}

export interface AuditRecord {
  format: typeof AUDIT_FORMAT;
  exportedAt: string;
  /** True when every source answered; otherwise `missing` says what is absent and why. */
  complete: boolean;
  missing: { part: string; reason: string }[];
  /** Where each part came from (null: nowhere). */
  sources: Record<
    'question' | 'configDigest' | 'plan' | 'audit' | 'steps' | 'usage' | 'models' | 'provenance',
    string | null
  >;
  workflow: ExecutionFacts;
  task: {
    question: string | null;
    playbook: string | null;
    depth: number | null;
    phase: Phase | null;
    outcome: ResearchTaskResult['outcome'] | null;
    error: string | null;
  };
  configDigest: string | null;
  plan: Plan | null;
  planAttempts: number | null;
  revisions: TaskStatus['revisions'] | null;
  pendingGate: PendingGate | null;
  /**
   * Sign-offs that closed a gate with approval (from the provenance; null until the task ends),
   * each with `check`: how it was signed (`unsigned` when taken as given) and whether its signature
   * verified again offline (cli/audit-approvals.ts).
   */
  approvals: ReturnType<typeof approvalsWithChecks> | null;
  /** Every decision, accepted or refused, and every gate event: the `audit` query's answer. */
  audit: AuditEntry[] | null;
  steps: StepRecord[] | null;
  models: Record<string, ModelRecord>;
  usage: Usage | null;
  report: {
    kind: ReportKind | null;
    path: string | null;
    draftPath: string | null;
    artifact: ArtifactRef | null;
    contentHash: string | null;
  } | null;
  labels: {
    /** The explicit label paragraphs of the report file, above and below the body. */
    explicit: { top: string | null; bottom: string | null; aiGenerated: boolean } | null;
    /** The provenance record: the workflow result's when there is one, else the report file's. */
    provenance: Provenance | null;
    /** Whether the provenance in the report file, and in the `.provenance.json` beside it, equal the workflow result's. */
    provenanceInReport: { found: boolean; matchesResult: boolean | null } | null;
    provenanceFile: { path: string; found: boolean; matchesResult: boolean | null } | null;
  };
  verification: Verification;
  /**
   * The report's citations re-checked against the task's retrieval record (cli/audit-citations.ts);
   * absent when there is no report to check.
   */
  citations?: CitationCheck;
  /** The event history's own record, read without a worker. */
  history: HistoryFacts | null;
}
