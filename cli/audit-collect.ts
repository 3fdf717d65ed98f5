/**
 * Gathers what the audit export is built from, and builds it. The task's own record first: the
 * `status` query (its audit trail, steps, phase and usage; a worker must answer it) and, once the task
 * has closed, the workflow result with its provenance. Beside them, from the server alone, the event
 * history (cli/audit-history.ts): the fallback when no worker answers or the task is old, and the
 * independent record of what was delivered and run. Then the report file the record names.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { failureMessage } from '../contract/failures';
import { status as statusQuery, type ResearchTaskResult, type TaskStatus } from '../contract/messages';
import { DEFAULT_WORKER_TIMEOUT_MS, workerTimedOut } from '../client';
import { buildAuditRecord } from './audit-build';
import { readHistory } from './audit-history';
import type {
  Answer,
  AuditRecord,
  ExecutionFacts,
  HistoryFacts,
  Publishers,
  ReportFiles,
} from './audit-record';
import { provenancePathOf } from '../activities/report';
import type { reportReader } from '../workers/store';
import { reportTarget } from './audit-verify';
import { recheckCitations } from './audit-citations';
import type { ObjectStore } from '../activities/store';

type ReportReader = ReturnType<typeof reportReader>;

/** Past this, a server that has not answered `describe` is reported as unreachable. */
export const DEFAULT_SERVER_TIMEOUT_MS = 10_000;

/** Whether any worker has polled the task queue lately (undefined: the server would not say). */
async function workerSeen(client: Client, taskQueue: string): Promise<boolean | undefined> {
  try {
    const res = await client.workflowService.describeTaskQueue({
      namespace: client.options.namespace,
      taskQueue: { name: taskQueue },
      taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    });
    return (res.pollers?.length ?? 0) > 0;
  } catch {
    return undefined;
  }
}

/** The `status` query, or why it could not be answered. Only a worker answers it, so it is bounded. */
async function readStatus(
  client: Client,
  handle: WorkflowHandle,
  taskQueue: string,
  timeoutMs: number,
): Promise<Answer<TaskStatus>> {
  const hint = `start a worker on task queue "${taskQueue}" (npm run worker with BATON_TASK_QUEUE=${taskQueue}) and export again for the full record`;
  if ((await workerSeen(client, taskQueue)) === false) {
    return {
      ok: false,
      reason: `no worker polls task queue "${taskQueue}" (the server has seen none lately), and only a worker answers the status query; ${hint}`,
    };
  }
  const deadline = Date.now() + timeoutMs;
  try {
    return { ok: true, value: await client.withDeadline(deadline, () => handle.query(statusQuery)) };
  } catch (err) {
    if (workerTimedOut(err, deadline)) {
      return {
        ok: false,
        reason: `no worker answered the status query within ${timeoutMs / 1000} s; ${hint}`,
      };
    }
    return { ok: false, reason: `the status query failed: ${failureMessage(err)}` };
  }
}

/** The workflow result of a closed run, or why there is none. */
async function readResult(
  handle: WorkflowHandle,
  execution: ExecutionFacts,
): Promise<Answer<ResearchTaskResult>> {
  if (execution.status === 'RUNNING') return { ok: false, reason: 'the task is still running' };
  if (execution.type !== 'researchTask') {
    // A decomposed step's child task returns a sub-report to its parent: no report file, no provenance.
    const parent = execution.parent ? ` (export ${execution.parent.workflowId} for them)` : '';
    return {
      ok: false,
      reason: `a ${execution.type} task has no report or provenance of its own: its parent's result carries them${parent}`,
    };
  }
  try {
    return { ok: true, value: (await handle.result()) as ResearchTaskResult };
  } catch (err) {
    return {
      ok: false,
      reason: `the task ended ${execution.status.toLowerCase()} without a result: ${failureMessage(err)}`,
    };
  }
}

/** Reads a report or provenance at its location (workers/store.ts); a missing one says where to look. */
export async function readReportText(read: ReportReader, file: string): Promise<Answer<string>> {
  try {
    const body = await read(file);
    if (body) return { ok: true, value: body.toString('utf8') };
    return {
      ok: false,
      reason: file.startsWith('s3://')
        ? 'no such object in the store (check BATON_STORE and the AWS credentials, or give a copy with --report <file>)'
        : 'no such file (the worker writes reports to its BATON_REPORT_DIR: export where that folder is, or give a copy with --report <file>)',
    };
  } catch (err) {
    return { ok: false, reason: failureMessage(err) };
  }
}

/**
 * Gathers everything about one task and builds its record. Throws WorkflowNotFoundError for an
 * unknown id, and the server's error when it cannot be reached; everything else ends up in the
 * record, with what is missing and why.
 */
export async function collectAudit(
  client: Client,
  workflowId: string,
  options: {
    reportFile?: string;
    publishers?: Publishers;
    workerTimeoutMs?: number;
    serverTimeoutMs?: number;
    now?: Date;
    /** How reports are read: through the workers' store (workers/store.ts, `reportReader`). */
    readReport: ReportReader;
    /** The workers' artifact store, where the retrieval record is (opened only when there is a report to check). */
    artifacts?: () => ObjectStore;
  },
): Promise<AuditRecord> {
  const execution = await describeExecution(
    client,
    workflowId,
    options.serverTimeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS,
  );
  // Everything below describes this one run. The three sources are independent: asked at once.
  const handle = client.workflow.getHandle(workflowId, execution.runId);
  const [status, result, history] = await Promise.all([
    readStatus(client, handle, execution.taskQueue, options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS),
    readResult(handle, execution),
    readHistory(client, handle).then(
      (value): Answer<HistoryFacts> => ({ ok: true, value }),
      (err): Answer<HistoryFacts> => ({
        ok: false,
        reason: `the event history could not be read: ${failureMessage(err)}`,
      }),
    ),
  ]);
  const sources = {
    exportedAt: (options.now ?? new Date()).toISOString(),
    execution,
    status,
    result,
    history,
  };
  const target = reportTarget(sources, options.reportFile);
  const reportFiles = target ? await readReportFiles(options.readReport, target.path) : undefined;
  const record = buildAuditRecord({ ...sources, reportFiles, publishers: options.publishers });
  const citations =
    options.artifacts &&
    (await recheckCitations({ status, result, reportText: reportFiles?.text, artifacts: options.artifacts }));
  return citations ? { ...record, citations } : record;
}

/** The execution as the server describes it (its latest run), within `timeoutMs`. */
async function describeExecution(
  client: Client,
  workflowId: string,
  timeoutMs: number,
): Promise<ExecutionFacts> {
  const d = await client.withDeadline(Date.now() + timeoutMs, () =>
    client.workflow.getHandle(workflowId).describe(),
  );
  return {
    namespace: client.options.namespace,
    workflowId: d.workflowId,
    runId: d.runId,
    type: d.type,
    status: d.status.name,
    taskQueue: d.taskQueue,
    startTime: d.startTime.toISOString(),
    executionTime: d.executionTime?.toISOString() ?? null,
    closeTime: d.closeTime?.toISOString() ?? null,
    historyLength: d.historyLength,
    parent: d.parentExecution
      ? { workflowId: d.parentExecution.workflowId ?? '', runId: d.parentExecution.runId ?? '' }
      : null,
  };
}

/** A report file and the `.provenance.json` beside it, each read or with why it could not be. */
async function readReportFiles(read: ReportReader, file: string): Promise<ReportFiles> {
  const provenancePath = provenancePathOf(file);
  const [text, provenanceText] = await Promise.all([
    readReportText(read, file),
    readReportText(read, provenancePath),
  ]);
  return { path: file, text, provenancePath, provenanceText };
}
