/**
 * Builds the audit record from what the sources answered. The task's own answers come first: the
 * `status` query (the audit trail, steps, phase, usage) while a worker answers, the workflow result's
 * provenance once the task has closed; the event history fills in only what they cannot give, and
 * every part that could not be had is listed in `missing`, with why.
 *
 * Pure, so every rule about which source wins is tested directly.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Plan } from '../config/schema';
import type { SignedProvenance } from '../activities/signing';
import type { Provenance, ResearchTaskResult, TaskStatus } from '../contract/messages';
import {
  AUDIT_FORMAT,
  type AuditRecord,
  type AuditSources,
  type HistoryFacts,
  type ModelRecord,
  type ReportFiles,
  type StepRecord,
  type Verification,
} from './audit-record';
import { approvalsWithChecks } from './audit-approvals';
import { embeddedProvenance, explicitLabels, reportTarget, verifyReport } from './audit-verify';

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
  const record = (
    a: { id: string; model: string; role: string },
    from: ModelRecord['from'],
  ): ModelRecord => ({
    model: a.model,
    role: a.role,
    lead: a.id === lead,
    from,
    answeredAs: history?.modelsAnswered[a.id] ?? [],
  });
  const entries = new Map<string, ModelRecord>();
  for (const a of provenance?.agents ?? []) entries.set(a.id, record(a, 'provenance'));
  for (const a of history?.config?.agents ?? []) {
    if (!entries.has(a.id)) entries.set(a.id, record(a, 'config snapshot'));
  }
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

  const files = src.reportFiles;
  const found = provenanceOf(files, result);
  const provenance = found.provenance;
  const plan = status?.plan ?? (history ? planFromHistory(history) : null);
  const audit = status?.audit ?? result?.provenance.audit ?? null;
  const models = modelRecords(result?.provenance ?? null, history);

  if (!status) {
    const noStatus = ', and the status query could not be answered (see "status")';
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
      missing.push({ part: 'plan', reason: `the event history holds no valid plan (yet)${noStatus}` });
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
  const verification = verificationOf(src);
  if (files && !files.text.ok) missing.push({ part: 'report file', reason: verification.reason });

  return {
    format: AUDIT_FORMAT,
    exportedAt: src.exportedAt,
    complete: missing.length === 0,
    missing,
    sources: sourcesOf(src, { plan, audit, provenanceFrom: found.from }),
    workflow: src.execution,
    task: {
      question: status?.question ?? provenance?.question ?? history?.input?.question ?? null,
      playbook: status?.playbook ?? provenance?.playbook ?? history?.input?.playbook ?? null,
      depth: status?.depth ?? null,
      phase: status?.phase ?? null,
      outcome: result?.outcome ?? null,
      error: status?.error ?? history?.close?.failure ?? null,
    },
    configDigest: status?.configDigest ?? result?.provenance.configDigest ?? history?.config?.digest ?? null,
    plan,
    planAttempts: status?.planAttempts ?? (history ? history.plans.length : null),
    revisions: status?.revisions ?? null,
    pendingGate: status?.pendingGate ?? null,
    approvals: result ? approvalsWithChecks(result.provenance) : null,
    audit,
    steps: status ? stepRecords(status, models, history) : null,
    models,
    usage: status?.usage ?? result?.provenance.usage ?? history?.usage ?? null,
    report: reportOf(src),
    labels: labelsOf(
      files,
      found,
      result !== null && verification.kind === 'final' ? result.provenance : null,
    ),
    verification,
    history,
  };
}

/** The provenance found in the sources, and where from: the workflow result's is the record; a report file's stands in when there is none. */
interface FoundProvenance {
  provenance: Provenance | null;
  from: string | null;
  /** The provenance embedded in the report file, and the one in the `.provenance.json` beside it. */
  inFile: SignedProvenance | undefined;
  sidecar: SignedProvenance | undefined;
}

function provenanceOf(files: ReportFiles | undefined, result: ResearchTaskResult | null): FoundProvenance {
  const inFile = files?.text.ok ? embeddedProvenance(files.text.value) : undefined;
  const sidecar = ((): SignedProvenance | undefined => {
    if (!files?.provenanceText.ok) return undefined;
    try {
      return JSON.parse(files.provenanceText.value) as SignedProvenance;
    } catch {
      return undefined;
    }
  })();
  return {
    provenance: result?.provenance ?? inFile ?? sidecar ?? null,
    from: result
      ? 'workflow result'
      : inFile
        ? `report file ${files!.path}`
        : sidecar
          ? `provenance file ${files!.provenancePath}`
          : null,
    inFile,
    sidecar,
  };
}

/** The report file read, checked against the hash Temporal recorded for it; or why there is none. */
function verificationOf(src: AuditSources): Verification {
  const files = src.reportFiles;
  const target = files ? reportTarget(src, files.path) : null;
  if (files && target) {
    // Nothing recorded in Temporal: verifyReport falls back on the file's own provenance (self-consistency only).
    return verifyReport({
      file: files.path,
      kind: target.kind,
      text: files.text,
      expected: target.expected,
      publishers: src.publishers ?? { ok: false, reason: 'no list of publisher keys was given' },
    });
  }
  const result = src.result.ok ? src.result.value : null;
  return {
    verified: false,
    check: 'no-report',
    reason:
      result?.outcome === 'rejected'
        ? 'the task was rejected before a report was published'
        : src.execution.status !== 'RUNNING'
          ? `no report was published (the task ended ${src.execution.status.toLowerCase()})`
          : 'no report has been published yet',
    file: null,
    kind: null,
    expected: null,
    expectedFrom: null,
    actual: null,
    signature: null,
  };
}

/** The report: the published file (final or partial) and the draft, as Temporal records them. */
function reportOf(src: AuditSources): AuditRecord['report'] {
  const result = src.result.ok ? src.result.value : null;
  const statusReport = src.status.ok ? src.status.value.report : undefined;
  const recorded = reportTarget(src);
  if (!recorded && !statusReport && !result?.reportPath) return null;
  return {
    kind: recorded?.kind ?? null,
    path:
      result?.reportPath ??
      statusReport?.path ??
      (recorded && recorded.kind !== 'draft' ? recorded.path : null),
    draftPath: statusReport?.draftPath ?? (recorded?.kind === 'draft' ? recorded.path : null),
    artifact: result?.report ?? statusReport?.artifact ?? null,
    contentHash: recorded?.expected?.hash ?? null,
  };
}

/** The report file's labels, and whether the provenance in it (and beside it) equals `resultProvenance`. */
function labelsOf(
  files: ReportFiles | undefined,
  found: FoundProvenance,
  resultProvenance: Provenance | null,
): AuditRecord['labels'] {
  // The workflow result never carries the publisher's signature: compared without it.
  const matches = (p: SignedProvenance | undefined): boolean | null =>
    resultProvenance && p
      ? isDeepStrictEqual({ ...p, signature: undefined }, { ...resultProvenance, signature: undefined })
      : null;
  const text = files?.text.ok ? files.text.value : null;
  const labels = text !== null ? explicitLabels(text) : null;
  return {
    explicit: labels ? { ...labels, aiGenerated: labels.top !== null && labels.bottom !== null } : null,
    provenance: found.provenance,
    provenanceInReport:
      text !== null ? { found: found.inFile !== undefined, matchesResult: matches(found.inFile) } : null,
    provenanceFile: files
      ? {
          path: files.provenancePath,
          found: found.sidecar !== undefined,
          matchesResult: matches(found.sidecar),
        }
      : null,
  };
}

/** Where each part of the record came from (null: nowhere). */
function sourcesOf(
  src: AuditSources,
  parts: { plan: Plan | null; audit: AuditRecord['audit']; provenanceFrom: string | null },
): AuditRecord['sources'] {
  const status = src.status.ok ? src.status.value : null;
  const result = src.result.ok ? src.result.value : null;
  const history = src.history.ok ? src.history.value : null;
  return {
    question: status
      ? 'status query'
      : parts.provenanceFrom
        ? parts.provenanceFrom
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
    plan: status?.plan ? 'status query' : parts.plan ? 'event history' : null,
    audit: status
      ? 'status query (the audit query answers the same trail)'
      : parts.audit
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
    provenance: parts.provenanceFrom,
  };
}
