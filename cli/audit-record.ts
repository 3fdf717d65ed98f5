/**
 * The audit export's pure parts: what a task's record holds (format `baton-audit/1`), built from
 * what Temporal answered (describe, the `status` query, the workflow result, the event history)
 * and from the published report file; and the check of a report's content hash.
 *
 * Nothing here does I/O: `cli/audit.ts` gathers the inputs and writes the result, so every rule
 * about which source wins, what is missing and why, and when a report verifies is tested directly.
 */
import { sha256 } from '../activities/artifacts';
import { BODY_END, BODY_START } from '../activities/report';
import type { Plan } from '../config/schema';
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
  /** The report file chosen by {@link reportTarget} (or given with `--report`), once read. */
  reportFiles?: ReportFiles;
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

export type VerificationCheck =
  'match' | 'mismatch' | 'no-report' | 'unreadable' | 'malformed' | 'no-expected-hash';

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
  /** Sign-offs that closed a gate with approval (from the provenance; null until the task ends). */
  approvals: Provenance['approvals'] | null;
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
  /** The event history's own record, read without a worker. */
  history: HistoryFacts | null;
}

// ---------------------------------------------------------------------------------------------------------
// Report files

/** What a report file's name should be, as `publishReport` makes it. */
export const safeName = (workflowId: string): string => workflowId.replace(/[^A-Za-z0-9._-]+/g, '_');

/** The `.provenance.json` written beside a report. */
export const provenancePathOf = (reportPath: string): string =>
  /\.md$/.test(reportPath)
    ? reportPath.replace(/\.md$/, '.provenance.json')
    : `${reportPath}.provenance.json`;

/**
 * The body of a published report: the text between the first `BODY_START` and the `BODY_END`
 * after it, without the blank line after the one and before the other (exactly as
 * `renderReport` lays it out, and as the README's shell recipe reads it).
 */
export function reportBody(text: string): { ok: true; body: string } | { ok: false; reason: string } {
  const start = text.indexOf(BODY_START);
  if (start === -1) return { ok: false, reason: `it has no ${BODY_START} marker` };
  const from = start + BODY_START.length;
  const end = text.indexOf(BODY_END, from);
  if (end === -1) return { ok: false, reason: `it has no ${BODY_END} marker after ${BODY_START}` };
  const between = text.slice(from, end);
  if (!between.startsWith('\n\n') || !between.endsWith('\n\n') || between.length < 4) {
    return {
      ok: false,
      reason: 'the body markers are not each followed and preceded by a blank line, as Baton writes them',
    };
  }
  return { ok: true, body: between.slice(2, -2) };
}

/** `sha256:<hex>` of a report's body, or why it has none. */
export function reportContentHash(text: string): { ok: true; hash: string } | { ok: false; reason: string } {
  const body = reportBody(text);
  return body.ok ? { ok: true, hash: `sha256:${sha256(body.body)}` } : body;
}

/** The explicit labels: the paragraphs above the body and below it that carry the AI-generated label. */
export function explicitLabels(text: string): { top: string | null; bottom: string | null } {
  const start = text.indexOf(BODY_START);
  const end = start === -1 ? -1 : text.indexOf(BODY_END, start);
  const isLabel = (p: string): boolean => p.startsWith('> **AI-generated content.**');
  const top =
    start === -1
      ? null
      : (text
          .slice(0, start)
          .split('\n\n')
          .map((p) => p.trim())
          .filter(isLabel)
          .at(-1) ?? null);
  const bottom =
    end === -1
      ? null
      : (text
          .slice(end + BODY_END.length)
          .split('\n\n')
          .map((p) => p.trim())
          .find(isLabel) ?? null);
  return { top, bottom };
}

/** The provenance record embedded at the end of a report (`## Provenance` and a JSON block). */
export function embeddedProvenance(text: string): Provenance | undefined {
  const end = text.lastIndexOf(BODY_END);
  const tail = end === -1 ? text : text.slice(end);
  const match = /## Provenance\n\n```json\n([\s\S]*?)\n```/.exec(tail);
  if (!match) return undefined;
  try {
    return JSON.parse(match[1]!) as Provenance;
  } catch {
    return undefined;
  }
}

/** Deep equality of JSON values, key order aside. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  return (
    ka.length === kb.length &&
    ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

/**
 * Checks a report file's body against the content hash recorded for it. Pure: given the file's
 * text (or why it could not be read) and the expected hash with where it was recorded.
 */
export function verifyReport(input: {
  file: string;
  kind: ReportKind | null;
  text: Answer<string>;
  expected: { hash: string; from: string } | null;
}): Verification {
  // One key order for every outcome: the verdict first.
  const verdict = (
    verified: boolean,
    check: VerificationCheck,
    reason: string,
    actual: string | null = null,
  ): Verification => ({
    verified,
    check,
    reason,
    file: input.file,
    kind: input.kind,
    expected: input.expected?.hash ?? null,
    expectedFrom: input.expected?.from ?? null,
    actual,
  });
  if (!input.text.ok) return verdict(false, 'unreadable', `cannot read ${input.file}: ${input.text.reason}`);
  const actual = reportContentHash(input.text.value);
  if (!actual.ok) {
    const note = input.expected ? crlfNote(input.text.value, input.expected.hash) : '';
    return verdict(
      false,
      'malformed',
      `${input.file} is not a report as Baton publishes it: ${actual.reason}${note}`,
    );
  }
  if (!input.expected) {
    return verdict(
      false,
      'no-expected-hash',
      `no content hash is recorded for ${input.file} to compare its body with`,
      actual.hash,
    );
  }
  if (actual.hash === input.expected.hash) {
    return verdict(
      true,
      'match',
      `the sha256 of the body of ${input.file} equals the content hash recorded in ${input.expected.from}`,
      actual.hash,
    );
  }
  return verdict(
    false,
    'mismatch',
    `the body of ${input.file} is not the one published: its sha256 is ${actual.hash}, ${input.expected.from} records ${input.expected.hash}${crlfNote(input.text.value, input.expected.hash)}`,
    actual.hash,
  );
}

/** A file whose line endings were converted (e.g. by a Windows checkout) differs in bytes only: say so. */
function crlfNote(text: string, expected: string): string {
  if (!text.includes('\r\n')) return '';
  const lf = reportContentHash(text.replace(/\r\n/g, '\n'));
  return lf.ok && lf.hash === expected
    ? ' (its line endings were converted to CRLF: with LF line endings the body is the one published)'
    : '';
}

/** Which report file the export checks, and the hash Temporal recorded for it. */
export interface ReportTarget {
  path: string;
  kind: ReportKind;
  expected: { hash: string; from: string } | null;
}

/**
 * The report to verify: the final report of a completed task (hash from the workflow result);
 * otherwise the latest draft or partial report (hash from the status query: a report's artifact id
 * is the sha256 of its body); otherwise the last report the event history says was published.
 * With `override` (`--report <file>`), that file is checked against the same recorded hash.
 */
export function reportTarget(src: Omit<AuditSources, 'reportFiles'>, override?: string): ReportTarget | null {
  const target = ((): ReportTarget | null => {
    if (src.result.ok && src.result.value.reportPath && src.result.value.provenance.contentHash) {
      return {
        path: src.result.value.reportPath,
        kind: src.result.value.provenance.reportKind ?? 'final',
        expected: {
          hash: src.result.value.provenance.contentHash,
          from: 'the workflow result (provenance.contentHash)',
        },
      };
    }
    const report = src.status.ok ? src.status.value.report : undefined;
    const statusPath = report?.path ?? report?.draftPath;
    if (report && statusPath) {
      return {
        path: statusPath,
        kind: report.path ? (/\.partial\.md$/.test(report.path) ? 'partial' : 'final') : 'draft',
        expected: { hash: report.artifact.id, from: 'the status query (report.artifact.id)' },
      };
    }
    const last = src.history.ok ? src.history.value.publications.at(-1) : undefined;
    if (last) {
      return {
        path: last.path,
        kind: last.kind,
        expected: { hash: last.contentHash, from: 'the event history (publishReport result)' },
      };
    }
    return null;
  })();
  if (override === undefined) return target;
  return { path: override, kind: target?.kind ?? 'final', expected: target?.expected ?? null };
}

// ---------------------------------------------------------------------------------------------------------
// Building the record

const STEP_CHILD = /\/step-([^/]+)(?:\/rev-\d+)?(?:\/attempt-\d+)?$/;

/** The step id a child workflow id belongs to (`<parent>/step-<id>[/rev-n][/attempt-n]`). */
export function stepOfChild(parentId: string, childId: string): string | undefined {
  if (!childId.startsWith(`${parentId}/`)) return undefined;
  return STEP_CHILD.exec(childId.slice(parentId.length))?.[1];
}

function stepRecords(
  status: TaskStatus,
  models: Record<string, ModelRecord>,
  history: HistoryFacts | null,
): StepRecord[] {
  return status.steps.map((s) => {
    const children = (history?.stepRuns ?? [])
      .filter((r) => r.childWorkflowId && r.step === s.id)
      .map((r) => r.childWorkflowId!);
    if (s.childWorkflowId && !children.includes(s.childWorkflowId)) children.push(s.childWorkflowId);
    const started = s.startedAt ? Date.parse(s.startedAt) : NaN;
    const finished = s.finishedAt ? Date.parse(s.finishedAt) : NaN;
    return {
      id: s.id,
      agent: s.agent,
      model: models[s.agent]?.model ?? null,
      question: s.question,
      dependsOn: s.dependsOn,
      decompose: s.decompose,
      state: s.state,
      revision: s.revision ?? 0,
      attempt: s.attempt ?? null,
      summary: s.summary ?? null,
      sources: s.sources ?? [],
      result: s.result ?? null,
      usage: s.usage ?? null,
      startedAt: s.startedAt ?? null,
      finishedAt: s.finishedAt ?? null,
      durationMs: Number.isFinite(started) && Number.isFinite(finished) ? finished - started : null,
      childWorkflowIds: children,
      error: s.error ?? null,
    };
  });
}

function modelRecords(
  provenance: Provenance | null,
  history: HistoryFacts | null,
): Record<string, ModelRecord> {
  const lead = history?.config?.lead;
  const entries = new Map<string, ModelRecord>();
  for (const a of provenance?.agents ?? []) {
    entries.set(a.id, {
      model: a.model,
      role: a.role,
      lead: a.id === lead,
      from: 'provenance',
      answeredAs: [],
    });
  }
  for (const a of history?.config?.agents ?? []) {
    if (!entries.has(a.id))
      entries.set(a.id, {
        model: a.model,
        role: a.role,
        lead: a.id === lead,
        from: 'config snapshot',
        answeredAs: [],
      });
  }
  for (const [id, record] of entries) record.answeredAs = history?.modelsAnswered[id] ?? [];
  // Stable order: the lead first, then by id.
  const ids = [...entries.keys()].sort((a, b) => (a === lead ? -1 : b === lead ? 1 : a.localeCompare(b)));
  return Object.fromEntries(ids.map((id) => [id, entries.get(id)!]));
}

/** The plan as the event history shows it: the playbook's fixed plan, or the planner's last valid answer. */
function planFromHistory(history: HistoryFacts): Plan | null {
  return history.config?.fixedPlan ?? history.plans.filter((p) => p.valid && p.plan).at(-1)?.plan ?? null;
}

/** Builds the export from what the sources answered. Every part that could not be had is in `missing`, with why. */
export function buildAuditRecord(src: AuditSources): AuditRecord {
  const missing: AuditRecord['missing'] = [];
  const status = src.status.ok ? src.status.value : null;
  const result = src.result.ok ? src.result.value : null;
  const history = src.history.ok ? src.history.value : null;
  const closed = src.execution.status !== 'RUNNING';

  if (!src.status.ok) missing.push({ part: 'status', reason: src.status.reason });
  // A running task has no result yet: that is not missing. A completed one must have it.
  if (!src.result.ok && src.execution.status === 'COMPLETED')
    missing.push({ part: 'result', reason: src.result.reason });
  if (!src.history.ok) missing.push({ part: 'history', reason: src.history.reason });

  const noStatus = ', and the status query could not be answered (see "status")';

  // Provenance: the workflow result's is the record; a report file's stands in when there is none.
  const files = src.reportFiles;
  const inFile = files?.text.ok ? embeddedProvenance(files.text.value) : undefined;
  const sidecar = ((): Provenance | undefined => {
    if (!files?.provenanceText.ok) return undefined;
    try {
      return JSON.parse(files.provenanceText.value) as Provenance;
    } catch {
      return undefined;
    }
  })();
  const provenance = result?.provenance ?? inFile ?? sidecar ?? null;
  const provenanceFrom = result
    ? 'workflow result'
    : inFile
      ? `report file ${files!.path}`
      : sidecar
        ? `provenance file ${files!.provenancePath}`
        : null;

  const question = status?.question ?? provenance?.question ?? history?.input?.question ?? null;
  const playbook = status?.playbook ?? provenance?.playbook ?? history?.input?.playbook ?? null;
  const configDigest =
    status?.configDigest ?? result?.provenance.configDigest ?? history?.config?.digest ?? null;
  const plan = status?.plan ?? (history ? planFromHistory(history) : null);
  const audit = status?.audit ?? result?.provenance.audit ?? null;
  const models = modelRecords(result?.provenance ?? null, history);
  const usage = status?.usage ?? result?.provenance.usage ?? history?.usage ?? null;

  if (!status) {
    missing.push({
      part: 'steps',
      reason: `only the status query has the steps' states${noStatus}; history.stepRuns lists each run the event history records`,
    });
    if (!closed) {
      missing.push({ part: 'phase and pending gate', reason: `only the status query has them${noStatus}` });
    }
    if (!audit) {
      missing.push({
        part: 'audit',
        reason: `the audit trail (gate events, refusals) lives in the workflow's state until the task ends${noStatus}; history.signals and history.updates hold the decisions as delivered`,
      });
    }
    if (!plan) {
      missing.push({
        part: 'plan',
        reason: `the event history holds no valid plan (yet)${noStatus}`,
      });
    }
  }
  if (Object.keys(models).length === 0) {
    missing.push({
      part: 'models',
      reason: history
        ? 'the event history holds no config snapshot (yet) and there is no workflow result'
        : 'neither the event history nor a workflow result could be read',
    });
  }

  // The report and its verification: the file read is checked against the hash Temporal recorded.
  const target = files ? reportTarget(src, files.path) : null;
  const expected =
    target?.expected ??
    // Nothing recorded in Temporal: the file's own provenance is all there is (self-consistency only).
    (inFile?.contentHash
      ? {
          hash: inFile.contentHash,
          from: 'the provenance inside the report file itself (not a Temporal record)',
        }
      : null);
  const verification: Verification =
    files && target
      ? verifyReport({ file: files.path, kind: target.kind, text: files.text, expected })
      : {
          verified: false,
          check: 'no-report',
          reason:
            result?.outcome === 'rejected'
              ? 'the task was rejected before a report was published'
              : closed
                ? `no report was published (the task ended ${src.execution.status.toLowerCase()})`
                : 'no report has been published yet',
          file: null,
          kind: null,
          expected: null,
          expectedFrom: null,
          actual: null,
        };
  if (files && !files.text.ok) missing.push({ part: 'report file', reason: verification.reason });

  // The report: the published file (final or partial) and the draft, as Temporal records them.
  const statusReport = status?.report;
  const recorded = reportTarget(src);
  const report: AuditRecord['report'] =
    recorded || statusReport || result?.reportPath
      ? {
          kind: recorded?.kind ?? null,
          path:
            result?.reportPath ??
            statusReport?.path ??
            (recorded && recorded.kind !== 'draft' ? recorded.path : null),
          draftPath: statusReport?.draftPath ?? (recorded?.kind === 'draft' ? recorded.path : null),
          artifact: result?.report ?? statusReport?.artifact ?? null,
          contentHash: recorded?.expected?.hash ?? null,
        }
      : null;

  const explicit =
    files?.text.ok === true
      ? ((): NonNullable<AuditRecord['labels']['explicit']> => {
          const l = explicitLabels(files.text.value);
          return { ...l, aiGenerated: l.top !== null && l.bottom !== null };
        })()
      : null;
  const comparable = result !== null && verification.kind === 'final';

  return {
    format: AUDIT_FORMAT,
    exportedAt: src.exportedAt,
    complete: missing.length === 0,
    missing,
    sources: {
      question: status
        ? 'status query'
        : provenance
          ? provenanceFrom
          : history?.input
            ? 'event history (input)'
            : null,
      configDigest: status?.configDigest
        ? 'status query'
        : result
          ? 'workflow result'
          : history?.config
            ? 'event history (config snapshot)'
            : null,
      plan: status?.plan ? 'status query' : plan ? 'event history' : null,
      audit: status
        ? 'status query (the audit query answers the same trail)'
        : audit
          ? 'workflow result (provenance.audit)'
          : null,
      steps: status ? 'status query' : null,
      usage: status
        ? 'status query'
        : result
          ? 'workflow result'
          : history
            ? 'event history (summed from activity and child results)'
            : null,
      models: result
        ? 'workflow result (provenance.agents) and config snapshot'
        : history?.config
          ? 'config snapshot (event history)'
          : null,
      provenance: provenanceFrom,
    },
    workflow: src.execution,
    task: {
      question,
      playbook,
      depth: status?.depth ?? null,
      phase: status?.phase ?? null,
      outcome: result?.outcome ?? null,
      error: status?.error ?? history?.close?.failure ?? null,
    },
    configDigest,
    plan,
    planAttempts: status?.planAttempts ?? (history ? history.plans.length : null),
    revisions: status?.revisions ?? null,
    pendingGate: status?.pendingGate ?? null,
    approvals: result?.provenance.approvals ?? null,
    audit,
    steps: status ? stepRecords(status, models, history) : null,
    models,
    usage,
    report,
    labels: {
      explicit,
      provenance,
      provenanceInReport: files?.text.ok
        ? {
            found: inFile !== undefined,
            matchesResult: comparable && inFile ? sameJson(inFile, result.provenance) : null,
          }
        : null,
      provenanceFile: files
        ? {
            path: files.provenancePath,
            found: sidecar !== undefined,
            matchesResult: comparable && sidecar ? sameJson(sidecar, result.provenance) : null,
          }
        : null,
    },
    verification,
    history,
  };
}

// ---------------------------------------------------------------------------------------------------------
// What the CLI prints

/** A few lines saying what the export holds, for the terminal. */
export function summaryLines(record: AuditRecord): string[] {
  const w = record.workflow;
  const decisions = record.audit?.filter((e) => e.event === 'decision').length;
  const lines = [
    `task ${w.workflowId} (run ${w.runId}): ${w.status}${record.task.outcome ? `, outcome ${record.task.outcome}` : ''}${record.task.phase ? `, phase ${record.task.phase}` : ''}`,
    `plan: ${record.plan ? `${record.plan.steps.length} step(s)` : 'none'}; steps recorded: ${record.steps ? record.steps.length : 'unknown'}; decisions: ${decisions ?? 'unknown'}`,
  ];
  const v = record.verification;
  if (v.check === 'no-report') lines.push(`report: none (${v.reason})`);
  else
    lines.push(
      `report ${v.file} (${v.kind ?? 'unknown kind'}): ${v.verified ? 'verified' : 'NOT VERIFIED'}: ${v.reason}`,
    );
  return lines;
}
