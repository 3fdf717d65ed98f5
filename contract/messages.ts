/**
 * The public contract of Baton's workflows: input, signals, queries and result.
 *
 * Defined once, here, and imported by the workflows, the CLI and the tests. The wire names are
 * what users type with the Temporal CLI (`temporal workflow signal --name approve ...`), so
 * they never change; each const has the same name as its wire name.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { Passkey, Plan } from '../config/schema';
import type { ChildBounds } from './children';
import type { CitationSummary } from './citations';

// ---------------------------------------------------------------------------------------------------------
// Input

export const MAX_QUESTION_CHARS = 4000;

/** Most parts a task's state saved at a continue-as-new has (workflows/continue.ts). */
export const MAX_STATE_PARTS = 64;

/**
 * Documents given with a task (`npm start -- --doc <file>`, docs/tools.md "Documents"): at most
 * this many, their names at most this long. The bytes are in the artifact store; the input carries
 * references only. Byte and page caps are the CLI's (activities/documents.ts), from the Messages
 * API's PDF limits.
 */
export const MAX_TASK_DOCUMENTS = 5;
export const MAX_DOCUMENT_NAME_CHARS = 120;
export const DOCUMENT_MEDIA_TYPES = ['application/pdf', 'text/markdown', 'text/plain'] as const;

/** A document given with a task, by reference: its name (a file's base name), type, artifact and hash. */
export const TaskDocumentSchema = z
  .object({
    name: z
      .string()
      .max(MAX_DOCUMENT_NAME_CHARS, `must be at most ${MAX_DOCUMENT_NAME_CHARS} characters`)
      .regex(
        /^[\p{L}\p{N}_][\p{L}\p{N} ._()-]*$/u,
        'must be a file name of letters, digits, spaces, ".", "_", "-", "(" and ")"',
      ),
    mediaType: z.enum(DOCUMENT_MEDIA_TYPES),
    /** The bytes in the artifact store: `id` is the sha256 of the bytes. */
    ref: z
      .object({
        id: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits'),
        bytes: z.number().int().min(1),
      })
      .strict(),
    /** A PDF's pages, as counted when it was given. */
    pages: z.number().int().min(1).optional(),
  })
  .strict();
export type TaskDocument = z.infer<typeof TaskDocumentSchema>;

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
    /**
     * Set only by the task itself when it continues as a new run while waiting at a gate
     * (workflows/continue.ts): how many parts its saved state has, and the sha256 of their text. The
     * state is read from the store under the run it continued from, which the server names, and
     * checked against the hash; a run started with this field by anyone else finds no state.
     */
    continued: z
      .object({
        parts: z.number().int().min(1).max(MAX_STATE_PARTS),
        sha256: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits'),
      })
      .strict()
      .optional(),
    /** Documents the question comes with (docs/tools.md, "Documents"): references into the artifact store. */
    documents: z
      .array(TaskDocumentSchema)
      .max(MAX_TASK_DOCUMENTS, `must be at most ${MAX_TASK_DOCUMENTS} documents`)
      .refine((docs) => new Set(docs.map((d) => d.name)).size === docs.length, 'must have distinct names')
      .optional(),
  })
  .strict();
export type ResearchTaskInput = z.input<typeof ResearchTaskInputSchema>;

// ---------------------------------------------------------------------------------------------------------
// Signals

/** `tool`: a tool call that needs a person's approval (docs/tools.md, "Approving a tool call"). */
export const GATES = ['plan', 'report', 'tool'] as const;
export type Gate = (typeof GATES)[number];

export const DECISIONS = ['approve', 'reject', 'requestChanges'] as const;
export type Decision = (typeof DECISIONS)[number];

/** base64url without padding, `min` to `max` bytes of it (a WebAuthn assertion's fields). */
const base64url = (min: number, max: number, what: string) =>
  z
    .string()
    .regex(
      new RegExp(`^[A-Za-z0-9_-]{${Math.ceil((min * 4) / 3)},${Math.ceil((max * 4) / 3)}}$`),
      `must be ${what}: ${min} to ${max} bytes in base64url`,
    );

/** An approver's Ed25519 signature over a decision's statement (contract/decision.ts). */
export const Ed25519SignatureSchema = z
  .object({
    alg: z.literal('ed25519'),
    /** The signing key's fingerprint as `ssh-keygen -l -E sha256` prints it: `SHA256:<base64>`. */
    key: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be a key fingerprint "SHA256:…"'),
    /** The 64-byte signature, base64. */
    value: z.string().regex(/^[A-Za-z0-9+/]{86}==$/, 'must be a 64-byte Ed25519 signature in base64'),
  })
  .strict();

/**
 * A passkey's WebAuthn assertion over a decision's statement (contract/decision.ts): the
 * authenticator signed its data and the hash of the browser's client data, whose challenge is the
 * sha256 of the statement. Each field bounded (the credential id as WebAuthn bounds it).
 */
export const WebAuthnSignatureSchema = z
  .object({
    alg: z.literal('webauthn'),
    /** The credential id, as approvers.yaml lists it. */
    credential: base64url(16, 1023, 'a credential id'),
    /** The authenticator data: rp id hash, flags, counter (extensions, if any). */
    authenticatorData: base64url(37, 1024, 'authenticator data'),
    /** The browser's client data, the JSON it signed over. */
    clientDataJSON: base64url(16, 2048, 'client data JSON'),
    /** The signature: ECDSA in DER (ES256), or 64 bytes (Ed25519). */
    value: base64url(8, 72, 'a signature'),
  })
  .strict();

/** A decision's signature: an approver's key (the CLI), or a passkey (the inbox). */
export const DecisionSignatureSchema = z.discriminatedUnion('alg', [
  Ed25519SignatureSchema,
  WebAuthnSignatureSchema,
]);
export type DecisionSignature = z.infer<typeof DecisionSignatureSchema>;

/**
 * The most a decision signal's payload or a `decide` Update's request may weigh: the UTF-8 bytes of
 * its JSON. Checked before anything from it is stored; a larger one is refused and audited by size
 * and sha256 only. Well above any honest decision (a signed one with a long comment).
 */
export const MAX_DECISION_PAYLOAD_BYTES = 16 * 1024;
/** Refused decisions kept one by one in the audit trail; past them, one running summary entry. */
export const MAX_REFUSED_DECISION_ENTRIES = 50;
/** What a refused decision's audit entry keeps of who it claims to be from, and of the reason. */
export const MAX_REFUSED_BY_CHARS = 64;
export const MAX_REFUSAL_REASON_CHARS = 500;

/**
 * The payload of every decision signal. `gate` is optional: it defaults to the gate that is pending.
 * A signed decision also carries what its signature binds it to (`workflowId`, `gate`, `instance`,
 * `subject`, `at`; the decision is the signal's name or the Update's `decision`) and the `signature`
 * (contract/decision.ts): optional here, so payloads without them still parse; whether they are
 * required is the workflow's call.
 */
export const DecisionPayloadSchema = z
  .object({
    by: z.string().trim().min(1, 'must name who decides').max(200),
    gate: z.enum(GATES).optional(),
    comment: z.string().max(10_000).optional(),
    /** With requestChanges on the report: steps to run again (given the comment) before re-synthesis. */
    rerunSteps: z.array(z.string().min(1).max(32)).max(100).optional(),
    /** The task the decision is for. */
    workflowId: z.string().min(1).max(1000).optional(),
    /** Which opening of the gate it is for: `PendingGate.instance`. */
    instance: z.number().int().min(0).max(1_000_000_000).optional(),
    /** What is decided on: `PendingGate.subject`. */
    subject: z
      .string()
      .regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits')
      .optional(),
    /** When the approver signed, ISO 8601 (their clock). */
    at: z.iso.datetime().optional(),
    signature: DecisionSignatureSchema.optional(),
  })
  .strict();
export type DecisionPayload = z.infer<typeof DecisionPayloadSchema>;

/** A reviewer's request for changes, as passed on to the agents. */
export interface ChangeRequest {
  by: string;
  comment: string;
}

export const approve = defineSignal<[DecisionPayload]>('approve');
export const reject = defineSignal<[DecisionPayload]>('reject');
export const requestChanges = defineSignal<[DecisionPayload]>('requestChanges');

/** The Update's argument: a decision payload plus which decision it is. */
export const DecideRequestSchema = DecisionPayloadSchema.extend({ decision: z.enum(DECISIONS) }).strict();
export type DecideRequest = z.infer<typeof DecideRequestSchema>;

/** What the Update answers when it accepts a decision. */
export interface DecideResult {
  accepted: true;
  gate: Gate;
  /** Where the gate stands after this decision. */
  outcome: 'approved' | 'waiting' | 'rejected' | 'changes-requested';
  approvals: number;
  quorum: number;
}

/**
 * Decide at a gate and learn at once whether the decision was accepted: a refused decision fails
 * the Update with the reason (wrong gate, not an approver, gate closed, malformed payload…).
 */
export const decide = defineUpdate<DecideResult, [DecideRequest]>('decide');

/**
 * One entry of the audit trail: every decision, accepted or refused, every gate event, and every
 * attempt by a model to go beyond config that Baton refused (an invalid plan, an undeclared tool).
 */
export interface AuditEntry {
  /** Workflow time, ISO 8601. */
  at: string;
  gate: Gate | null;
  event:
    | 'gate-opened'
    | 'decision'
    | 'reminder'
    | 'escalated'
    | 'deadline'
    | 'gate-closed'
    | 'plan-refused'
    | 'tool-call-refused'
    | 'budget-exhausted'
    | 'continued-as-new';
  decision?: Decision;
  /** Who decided; `system` for deadline policies. */
  by?: string;
  via?: 'signal' | 'update' | 'system';
  accepted?: boolean;
  /** Why a decision was refused, or what a gate event did. */
  reason?: string;
  comment?: string;
  /**
   * An accepted decision: whether it was signed and verified (`true`), or taken as given under a
   * playbook with `decisions: unsigned` (`false`). Absent from entries recorded before signing.
   */
  signed?: boolean;
  /** A refused decision's payload: its JSON's size in UTF-8 bytes and `sha256:<hex>` of it (never the payload). */
  payload?: { bytes: number; sha256: string };
  /** The summary past {@link MAX_REFUSED_DECISION_ENTRIES} refused decisions: how many more, their bytes in all. */
  more?: { count: number; bytes: number };
  /** For refusals: the agent whose model went beyond config, the step (`s2/s1` inside a child) and the tool. */
  agent?: string;
  step?: string;
  tool?: string;
}

export const audit = defineQuery<AuditEntry[]>('audit');

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
  | 'cancelled'
  | 'failed';

/** `skipped`: failed, and the playbook says to go on without it (the report lists it). */
export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

/**
 * Tokens as the Messages API reports them, and what they are estimated to cost. The optional fields
 * are absent from usage recorded before Baton cached prompts and priced calls (old histories replay
 * with them absent).
 */
export interface TokenUsage {
  /** Input tokens at the base price: those neither read from nor written to the prompt cache (`input_tokens`). */
  inputTokens: number;
  outputTokens: number;
  /** Input tokens read from the prompt cache (`cache_read_input_tokens`). */
  cacheReadInputTokens?: number;
  /** Input tokens written to the prompt cache (`cache_creation_input_tokens`). */
  cacheCreationInputTokens?: number;
  /**
   * Estimated cost in USD at the price table of the task's config (`prices` in agents.yaml).
   * `null`: unknown, because a model used has no price there (never shown as 0).
   */
  costUsd?: number | null;
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
  /** The name of a task document the source is (docs/tools.md, "Documents"). */
  document?: string;
}

export interface StepStatus {
  id: string;
  /** How many times the step was re-run at a reviewer's request. */
  revision?: number;
  /** Which run of the step this is, counting the playbook's `onStepFailure.retries`. */
  attempt?: number;
  agent: string;
  question: string;
  dependsOn: string[];
  decompose: boolean;
  state: StepState;
  /** Workflow id of the child task, for a decomposed step. */
  childWorkflowId?: string;
  /** The research round that added the step (2 and later: {@link RoundStatus}); absent for the plan's. */
  round?: number;
  summary?: string;
  sources?: Source[];
  /** Set when the step's sources were over the caps (contract/activities.ts): `sources clipped to N of M`. */
  sourcesNote?: string;
  /** The same sources as a JSON artifact (a specialist's step, since v12): what synthesis is given. */
  sourcesRef?: ArtifactRef;
  /** What the step's tools returned, by reference, and how many retrievals (contract/citations.ts). */
  retrievedRef?: ArtifactRef;
  retrieved?: number;
  /** A decomposed step's: the retrieval records of its child's steps (workflows/citations.ts `childRetrievals`). */
  retrievedRefs?: ArtifactRef[];
  result?: ArtifactRef;
  usage?: TokenUsage;
  /** Why the step failed, clipped to `MAX_STEP_ERROR_BYTES` (contract/activities.ts). */
  error?: string;
  startedAt?: string;
  finishedAt?: string;
}

/**
 * The statement a signed approval was verified over, less what the approval itself says (`by`,
 * `comment`, the gate and the decision, `approve`): enough, with the signature, for an auditor to
 * verify it again (contract/decision.ts, `statementBytes`).
 */
export interface SignedStatement {
  workflowId: string;
  instance: number;
  subject: string;
  /** When the approver signed, ISO 8601 (their clock). */
  at: string;
  signature: DecisionSignature;
  /**
   * The public key the signature verified with, as config listed it when the task started: what an
   * auditor verifies it with offline (`npm run audit -- --verify`). Absent before it was recorded.
   */
  key?: SignerKey;
}

/** A signer's public key: an Ed25519 key (hex, 64 digits), or a passkey (config/approvers.ts). */
export type SignerKey = { alg: 'ssh-ed25519'; publicKey: string } | Passkey;

/** One approval at a gate: who, when (workflow time), and whether it was signed. */
export interface Approval {
  by: string;
  at: string;
  comment?: string;
  /** `false` under a playbook with `decisions: unsigned`; absent from approvals recorded before signing. */
  signed?: boolean;
  /** A signed approval's statement and signature. */
  statement?: SignedStatement;
}

/** A tool call waiting at the tool gate, as people see it; the gate's subject hashes the call whole. */
export interface ToolCallShown {
  step: string;
  server: string;
  tool: string;
  /** The arguments as JSON, sanitized for display (contract/text.ts `safeJson`) and clipped. */
  arguments: string;
}

export interface PendingGate {
  gate: Gate;
  since: string;
  /** At the tool gate: the exact call waiting. */
  call?: ToolCallShown;
  /** `primary`, or `escalated` once the first deadline passed with policy escalate. */
  stage: 'primary' | 'escalated';
  /** People who may decide now (`*`: anyone). */
  approvers: string[];
  quorum: number;
  /** Approvals so far, distinct people. */
  approvals: Approval[];
  deadline?: string;
  /** Reminder points already passed. */
  reminders: string[];
  /**
   * Which opening of this gate this is: a number that changes whenever the gate re-opens. A signed
   * decision names it. Absent from statuses recorded before decisions were signed.
   */
  instance?: number;
  /**
   * What is decided on, as `sha256:<hex>`: the plan's `planSubject` (contract/decision.ts) at the plan gate, the
   * draft's content hash at the report gate. A signed decision names it. Absent as `instance` is.
   */
  subject?: string;
  /**
   * Whether decisions here must be signed (a playbook with `decisions: signed`): `false` means
   * names are taken as given ("unsigned"). Absent from statuses recorded before it was published.
   */
  signed?: boolean;
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
  /** Rounds of changes requested at each gate (a tool call is approved or rejected, never changed). */
  revisions: Record<Exclude<Gate, 'tool'>, number>;
  steps: StepStatus[];
  pendingGate?: PendingGate;
  /** Totals, children included, and per agent. */
  usage: TokenUsage & { byAgent: Record<string, TokenUsage> };
  audit: AuditEntry[];
  /** The playbook's token budget, when it has one, and whether it stopped the task scheduling steps. */
  budget?: TaskBudget;
  /** The latest report: its artifact, the draft file approvers read (`draftPath`), the published file (`path`). */
  report?: { artifact: ArtifactRef; path?: string; draftPath?: string };
  /** The citation pass over the latest report (v16): verified and unverified sources, the retrieval record. */
  citations?: CitationSummary;
  error?: string;
  /** The lead's reviews after the planned steps, one per round (a playbook with `rounds`; workflows/rounds.ts). */
  rounds?: RoundStatus[];
  /** The documents given with the task, by reference (docs/tools.md, "Documents"). */
  documents?: TaskDocument[];
}

/**
 * How a round's review ended: `done` (the lead found the findings enough), `pending` (its delta
 * waits at the plan gate), `approved` there, `no-approval-needed` (rounds.approval: none), or the
 * rounds ended: `rejected` at the gate, `refused` (no valid delta in maxPlanAttempts), `failed`
 * (the review call failed), `no-room` (maxTotalSteps or the token budget leave no step to add).
 */
export type RoundDecision =
  'done' | 'pending' | 'approved' | 'no-approval-needed' | 'rejected' | 'refused' | 'failed' | 'no-room';

/** One research round's review, in status and provenance: bounded (contract/rounds.ts). */
export interface RoundStatus {
  /** The round the review would start: 2 for the first delta (round 1 is the approved plan). */
  n: number;
  /** Workflow time of the review's answer, ISO 8601. */
  at: string;
  /** The lead's reason: why the findings are enough, or the gap the new steps fill. */
  reason: string;
  /** The ids of the steps the delta adds (proposed, when it was rejected); none when done. */
  steps: string[];
  decision: RoundDecision;
  /** Who approved or rejected the delta. */
  by?: string[];
  /** Why the rounds ended without a delta: the last problems found, or the failure. */
  problems?: string;
}

export const status = defineQuery<TaskStatus>('status');

export interface TaskBudget {
  maxTokensPerTask?: number;
  maxTokensPerStep?: number;
  /** Set when the budget stopped new steps: the rest were skipped and the report says so. */
  stopped?: { at: string; reason: string };
}

// ---------------------------------------------------------------------------------------------------------
// Results

/** What a published report is: signed off, a draft awaiting sign-off, or partial (the task stopped early). */
export type ReportKind = 'final' | 'draft' | 'partial';

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
  approvals: ({ gate: Gate } & Approval)[];
  /** The whole audit trail of the gates: decisions accepted and refused, reminders, deadlines. */
  audit: AuditEntry[];
  /** The token budget the task ran under, and whether it cut the plan short. */
  budget?: TaskBudget;
  startedAt: string;
  finishedAt: string;
  /** sha256 of the report body between the labels, as `sha256:<hex>`. */
  contentHash?: string;
  /** Set when the report is published. */
  reportKind?: ReportKind;
  /** A partial report's reason: why the task stopped before its report was signed off. */
  stoppedBecause?: string;
  /**
   * The runs before `runId`, oldest first, when the task continued as a new run while waiting at a
   * gate (its history grew too long). Absent when it ran as one run.
   */
  earlierRuns?: string[];
  /**
   * The citation pass (v16, contract/citations.ts): how many cited sources a tool returned
   * (verified) and how many none did (unverified: marked in the text, removed from the sources),
   * and the task's retrieval record by reference. Absent from reports of older tasks.
   */
  citations?: CitationSummary;
  /** The research rounds after the plan: the lead's reasons, the steps each added, the decisions. */
  rounds?: RoundStatus[];
}

export interface ResearchTaskResult {
  outcome: 'completed' | 'rejected';
  workflowId: string;
  /** Path of the published Markdown report (absent when rejected before one existed). */
  reportPath?: string;
  report?: ArtifactRef;
  provenance: Provenance;
}

/** Input of a batch of a large plan's steps (see researchBatch). */
export interface BatchInput {
  question: string;
  depth: number;
  config: import('../config/schema').ConfigSnapshot;
  steps: Plan['steps'];
  /** The finished steps the batch's steps depend on, with their results. */
  settled: StepStatus[];
  /** What the parent narrows of `config` for the batch (contract/children.ts); absent before children checked their input. */
  bounds?: ChildBounds;
  /** The task's documents, by reference; absent without documents. */
  documents?: TaskDocument[];
}

export interface BatchResult {
  /**
   * Every step of the batch as it ended: done, failed or skipped; without the question and
   * dependencies the parent sent (results recorded before bounded input have them).
   */
  steps: Omit<StepStatus, 'question' | 'dependsOn'>[];
  usage: TokenUsage & { byAgent: Record<string, TokenUsage> };
  refusals?: AuditEntry[];
}

/** Input of a child task that plans and delegates one level deeper. */
export interface SubtaskInput {
  question: string;
  depth: number;
  /** The parent's config snapshot: a running task never sees config change under it. */
  config: import('../config/schema').ConfigSnapshot;
  /** What the parent narrows of `config` for the child (contract/children.ts); absent before children checked their input. */
  bounds?: ChildBounds;
  /** The task's documents, by reference; absent without documents. */
  documents?: TaskDocument[];
}

export interface SubtaskResult {
  summary: string;
  result: ArtifactRef;
  sources: Source[];
  usage: TokenUsage & { byAgent: Record<string, TokenUsage> };
  /** The child's refusals (invalid plans, undeclared tool calls), for the parent's audit trail. */
  refusals?: AuditEntry[];
  /** Its steps' retrieval records, for the parent's citation pass; absent before v16 or when none. */
  retrievedRefs?: ArtifactRef[];
}

// ---------------------------------------------------------------------------------------------------------
// Search attributes: registered on the server (docs/approvals.md), kept current by researchTask.

/** The task's phase, e.g. `awaiting-plan-approval`. */
export const BATON_PHASE = defineSearchAttributeKey('BatonPhase', SearchAttributeType.KEYWORD);
/** The gate a task waits at (`plan` or `report`); absent when none. */
export const BATON_PENDING_GATE = defineSearchAttributeKey('BatonPendingGate', SearchAttributeType.KEYWORD);
/** People who may still decide at the pending gate (`*` when anyone may). */
export const BATON_AWAITING = defineSearchAttributeKey('BatonAwaiting', SearchAttributeType.KEYWORD_LIST);

/** Every Baton search attribute, for registration. */
export const SEARCH_ATTRIBUTES = [BATON_PHASE, BATON_PENDING_GATE, BATON_AWAITING] as const;
