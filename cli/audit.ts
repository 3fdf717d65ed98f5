/**
 * `npm run audit -- <workflow id>`: the full record of a research task as JSON (format
 * `baton-audit/1`, built by cli/audit-record.ts): identity, question, config digest, plan, every
 * gate decision and event, steps, models, token usage, the report with its labels and provenance,
 * and a check of the report's content hash.
 *
 * Sources: `describe()` (the server), the `status` query (a worker must poll the task queue), the
 * workflow result (completed tasks) and the event history (the server). When the status query cannot
 * be answered, the export says so in `missing` and fills what it can from the history.
 *
 * The command logic lives in {@link runAudit}, which takes its client and output as arguments, so
 * the tests run it in-process against the test server.
 */
import {
  Client,
  Connection,
  isGrpcDeadlineError,
  isGrpcServiceError,
  WorkflowNotFoundError,
  type WorkflowHandle,
} from '@temporalio/client';
import {
  decodeArrayFromPayloads,
  decodeOptionalFailureToOptionalError,
} from '@temporalio/common/lib/internal-non-workflow';
import { optionalTsToDate } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type {
  PlanTaskInput,
  PlanTaskResult,
  PublishInput,
  PublishResult,
  StepInput,
  StepResult,
  SynthesisInput,
} from '../contract/activities';
import { PROJECT_ROOT } from '../activities/options';
import { addUsageInto } from '../contract/usage';
import type { ConfigSnapshot } from '../config/schema';
import { dataConverterFromEnv } from '../workers/codec';
import { connectionOptions, temporalOptionsFromEnv, type TemporalOptions } from '../workers/options';
import {
  status as statusQuery,
  type ResearchTaskResult,
  type SubtaskInput,
  type SubtaskResult,
  type TaskStatus,
  type TokenUsage,
} from '../contract/messages';
import {
  buildAuditRecord,
  provenancePathOf,
  reportTarget,
  safeName,
  stepOfChild,
  summaryLines,
  type Answer,
  type AuditRecord,
  type ExecutionFacts,
  type HistoryFacts,
  type ReportFiles,
  type StepRun,
} from './audit-record';
import { DEFAULT_WORKER_TIMEOUT_MS, workerTimedOut } from './baton';
import { runMain } from '../lib/cli';

export const USAGE = `usage: npm run audit -- <workflow id> [--out <file>] [--report <file>]

Writes the full record of a task as JSON (format "baton-audit/1"): identity and status, question
and playbook, config digest, plan, every gate decision and gate event, steps, models per agent,
token usage, the report with its labels and provenance, and whether the report's body still has
the content hash recorded when it was published.

options:
  --out <file>      where to write it; "-" writes to standard output
                    (default: reports/<workflow id>.audit.json, in $BATON_REPORT_DIR if set)
  --report <file>   verify this copy of the report instead of the file the task published
  -h, --help        this text

The status query needs a Baton worker polling the task's queue. Without one, the export is built
from the event history and the workflow result, and lists what is missing and why.

exit codes: 0 written (the report verified, or there is none yet); 3 written, but the report did
not verify; 1 nothing written (unknown task, server unreachable…); 2 usage error.

Connects like the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*.`;

/** What {@link runAudit} needs from its surroundings; tests pass their own. */
export interface AuditDeps {
  client: Client;
  /** One line of normal output. */
  out: (line: string) => void;
  /** One line of error output. */
  err: (line: string) => void;
  /** Where `BATON_REPORT_DIR` is read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long the `status` query may wait for a worker; default {@link DEFAULT_WORKER_TIMEOUT_MS}. */
  workerTimeoutMs?: number;
  /** How long the server may take to answer `describe`; default {@link DEFAULT_SERVER_TIMEOUT_MS}. */
  serverTimeoutMs?: number;
  /** The server's address, for error messages. */
  address?: string;
  /** The export's timestamp; default now. */
  now?: () => Date;
}

/** Past this, a server that has not answered `describe` is reported as unreachable. */
export const DEFAULT_SERVER_TIMEOUT_MS = 10_000;

/** A mistake in the command line: reported with the usage text and exit code 2. */
class UsageError extends Error {}

export interface AuditArgs {
  workflowId: string;
  out?: string;
  report?: string;
}

const OPTIONS = ['out', 'report'] as const;
type Option = (typeof OPTIONS)[number];
const isOption = (name: string): name is Option => (OPTIONS as readonly string[]).includes(name);

/** Parses the command line (without `node script`); `help` when help was asked for. */
export function parseAuditArgs(argv: readonly string[]): AuditArgs | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const positionals: string[] = [];
  const options = new Map<Option, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!isOption(name)) throw new UsageError(`unknown option --${name}`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = argv[++i];
      // A following option means the value was forgotten, not that the option is its value.
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    }
    if (value === '') throw new UsageError(`--${name} needs a value`);
    if (options.has(name)) throw new UsageError(`--${name} given twice`);
    options.set(name, value);
  }
  if (positionals.length === 0) throw new UsageError('a workflow id is required');
  if (positionals.length > 1) throw new UsageError(`unexpected argument "${positionals[1]}"`);
  if (!positionals[0]!.trim()) throw new UsageError('the workflow id is empty');
  return { workflowId: positionals[0]!, out: options.get('out'), report: options.get('report') };
}

// ---------------------------------------------------------------------------------------------------------
// Gathering

const iso = (ts: Parameters<typeof optionalTsToDate>[0]): string | null =>
  optionalTsToDate(ts)?.toISOString() ?? null;

const errorText = (err: unknown): string => {
  const parts: string[] = [];
  for (let cur: unknown = err; cur instanceof Error; cur = cur.cause) parts.push(cur.message);
  return parts.length ? parts.join(': ') : String(err);
};

/** Sums usage the way the workflow does (cache reads and writes, estimated cost included). */
const addUsage = (total: HistoryFacts['usage'], agent: string, u: TokenUsage | undefined): void => {
  if (!u) return;
  addUsageInto(total, u);
  addUsageInto((total.byAgent[agent] ??= { inputTokens: 0, outputTokens: 0 }), u);
};

/** Reads what the event history holds about the task; needs only the server. */
export async function readHistory(client: Client, handle: WorkflowHandle): Promise<HistoryFacts> {
  const events = (await handle.fetchHistory()).events ?? [];
  const converter = client.options.loadedDataConverter;
  const first = async (payloads: temporal.api.common.v1.IPayload[] | null | undefined): Promise<unknown> =>
    payloads?.length ? (await decodeArrayFromPayloads(converter, payloads))[0] : undefined;
  // Through the client's converter: with encryption on, failure messages are encoded too.
  const failureText = async (
    f: temporal.api.failure.v1.IFailure | null | undefined,
  ): Promise<string | null> => {
    const err = await decodeOptionalFailureToOptionalError(converter, f);
    return err ? errorText(err) : null;
  };

  const facts: HistoryFacts = {
    events: events.length,
    input: null,
    config: null,
    plans: [],
    usage: { inputTokens: 0, outputTokens: 0, byAgent: {} },
    modelsAnswered: {},
    signals: [],
    updates: [],
    stepRuns: [],
    publications: [],
    close: null,
  };
  const answered = (agent: string, model: string | undefined): void => {
    if (!model) return;
    const list = (facts.modelsAnswered[agent] ??= []);
    if (!list.includes(model)) list.push(model);
  };
  const activities = new Map<string, { type: string; input: unknown; run?: StepRun }>();
  const children = new Map<string, StepRun>();
  const updates = new Map<string, HistoryFacts['updates'][number]>();
  const workflowId = handle.workflowId;

  for (const e of events) {
    const at = iso(e.eventTime) ?? '';
    const id = String(e.eventId);
    if (e.workflowExecutionStartedEventAttributes) {
      const input = (await first(e.workflowExecutionStartedEventAttributes.input?.payloads)) as
        (Partial<SubtaskInput> & { playbook?: unknown }) | undefined;
      const question = typeof input?.question === 'string' ? input.question : null;
      facts.input = {
        question,
        // The workflow's default, as its input schema applies it; a child runs its parent's playbook.
        playbook:
          typeof input?.playbook === 'string'
            ? input.playbook
            : (input?.config?.playbook.id ?? (question !== null ? 'research-brief' : null)),
      };
      if (input?.config) facts.config = configFacts(input.config);
    } else if (e.activityTaskScheduledEventAttributes) {
      const a = e.activityTaskScheduledEventAttributes;
      const type = a.activityType?.name ?? '';
      const input = await first(a.input?.payloads);
      const entry: { type: string; input: unknown; run?: StepRun } = { type, input };
      if (type === 'runSpecialist') {
        const step = (input as StepInput).step;
        entry.run = {
          step: step.id,
          agent: step.agent,
          question: step.question,
          via: 'activity',
          childWorkflowId: null,
          scheduledAt: at,
          closedAt: null,
          outcome: 'running',
          summary: null,
          sources: null,
          usage: null,
          model: null,
          error: null,
        };
        facts.stepRuns.push(entry.run);
      }
      activities.set(id, entry);
    } else if (e.activityTaskCompletedEventAttributes) {
      const a = e.activityTaskCompletedEventAttributes;
      const entry = activities.get(String(a.scheduledEventId));
      if (!entry) continue;
      const result = await first(a.result?.payloads);
      switch (entry.type) {
        case 'loadConfigSnapshot':
          facts.config = configFacts(result as ConfigSnapshot);
          break;
        case 'planTask': {
          const r = result as PlanTaskResult;
          const lead = (entry.input as PlanTaskInput).lead.id;
          addUsage(facts.usage, lead, r.usage);
          answered(lead, r.model);
          facts.plans.push({
            at,
            valid: r.valid,
            plan: r.valid ? r.plan : null,
            problems: r.valid ? null : r.problems,
            model: r.model ?? null,
            usage: r.usage ?? null,
          });
          break;
        }
        case 'runSpecialist': {
          const r = result as StepResult;
          const agent = (entry.input as StepInput).agent.id;
          addUsage(facts.usage, agent, r.usage);
          answered(agent, r.model);
          Object.assign(entry.run!, {
            closedAt: at,
            outcome: 'completed',
            summary: r.summary,
            sources: r.sources,
            usage: r.usage,
            model: r.model ?? null,
          });
          break;
        }
        case 'synthesizeReport': {
          const lead = (entry.input as SynthesisInput).lead.id;
          const r = result as { usage: TokenUsage; model?: string };
          addUsage(facts.usage, lead, r.usage);
          answered(lead, r.model);
          break;
        }
        case 'publishReport': {
          const r = result as PublishResult;
          facts.publications.push({
            at,
            kind: (entry.input as PublishInput).kind ?? 'final',
            path: r.path,
            contentHash: r.contentHash,
          });
          break;
        }
      }
    } else if (
      e.activityTaskFailedEventAttributes ||
      e.activityTaskTimedOutEventAttributes ||
      e.activityTaskCanceledEventAttributes
    ) {
      const a =
        e.activityTaskFailedEventAttributes ??
        e.activityTaskTimedOutEventAttributes ??
        e.activityTaskCanceledEventAttributes!;
      const run = activities.get(String(a.scheduledEventId))?.run;
      if (!run) continue;
      run.closedAt = at;
      run.outcome = e.activityTaskFailedEventAttributes
        ? 'failed'
        : e.activityTaskTimedOutEventAttributes
          ? 'timed-out'
          : 'cancelled';
      run.error =
        (await failureText(
          e.activityTaskFailedEventAttributes?.failure ?? e.activityTaskTimedOutEventAttributes?.failure,
        )) ?? run.outcome;
    } else if (e.startChildWorkflowExecutionInitiatedEventAttributes) {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      const childId = a.workflowId ?? '';
      const input = (await first(a.input?.payloads)) as Partial<SubtaskInput> | undefined;
      // A decomposed step's child is summarized "<step> · <agent>: <question>" ("<agent>: <question>"
      // before v3); a batch of a large plan "batch <n>: steps …", which names no agent.
      const summary = e.userMetadata?.summary ? await first([e.userMetadata.summary]) : undefined;
      const head =
        typeof summary === 'string' && summary.includes(': ') ? summary.split(': ')[0]! : undefined;
      const agent = head === undefined || head.startsWith('batch ') ? null : head.split(' · ').at(-1)!;
      const run: StepRun = {
        step: stepOfChild(workflowId, childId) ?? childId,
        agent,
        question: typeof input?.question === 'string' ? input.question : null,
        via: 'child workflow',
        childWorkflowId: childId,
        scheduledAt: at,
        closedAt: null,
        outcome: 'running',
        summary: null,
        sources: null,
        usage: null,
        model: null,
        error: null,
      };
      facts.stepRuns.push(run);
      children.set(id, run);
    } else if (e.startChildWorkflowExecutionFailedEventAttributes) {
      const a = e.startChildWorkflowExecutionFailedEventAttributes;
      const run = children.get(String(a.initiatedEventId));
      if (run)
        Object.assign(run, { closedAt: at, outcome: 'failed', error: `could not start: ${String(a.cause)}` });
    } else if (e.childWorkflowExecutionCompletedEventAttributes) {
      const a = e.childWorkflowExecutionCompletedEventAttributes;
      const run = children.get(String(a.initiatedEventId));
      const r = (await first(a.result?.payloads)) as SubtaskResult | undefined;
      for (const [agent, u] of Object.entries(r?.usage.byAgent ?? {})) addUsage(facts.usage, agent, u);
      if (run && r) {
        Object.assign(run, {
          closedAt: at,
          outcome: 'completed',
          summary: r.summary,
          sources: r.sources,
          usage: { inputTokens: r.usage.inputTokens, outputTokens: r.usage.outputTokens },
        });
      }
    } else if (
      e.childWorkflowExecutionFailedEventAttributes ||
      e.childWorkflowExecutionCanceledEventAttributes ||
      e.childWorkflowExecutionTimedOutEventAttributes ||
      e.childWorkflowExecutionTerminatedEventAttributes
    ) {
      const a =
        e.childWorkflowExecutionFailedEventAttributes ??
        e.childWorkflowExecutionCanceledEventAttributes ??
        e.childWorkflowExecutionTimedOutEventAttributes ??
        e.childWorkflowExecutionTerminatedEventAttributes!;
      const run = children.get(String(a.initiatedEventId));
      if (!run) continue;
      run.closedAt = at;
      run.outcome = e.childWorkflowExecutionFailedEventAttributes
        ? 'failed'
        : e.childWorkflowExecutionCanceledEventAttributes
          ? 'cancelled'
          : e.childWorkflowExecutionTimedOutEventAttributes
            ? 'timed-out'
            : 'terminated';
      run.error = (await failureText(e.childWorkflowExecutionFailedEventAttributes?.failure)) ?? run.outcome;
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      facts.signals.push({
        at,
        name: a.signalName ?? '',
        payload: (await first(a.input?.payloads)) ?? null,
        identity: a.identity || null,
      });
    } else if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const request = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      const update = {
        at,
        name: request?.input?.name ?? '',
        updateId: request?.meta?.updateId ?? '',
        identity: request?.meta?.identity || null,
        request: (await first(request?.input?.args?.payloads)) ?? null,
        result: null as unknown,
        failure: null as string | null,
      };
      facts.updates.push(update);
      updates.set(update.updateId, update);
    } else if (e.workflowExecutionUpdateCompletedEventAttributes) {
      const a = e.workflowExecutionUpdateCompletedEventAttributes;
      const update = updates.get(a.meta?.updateId ?? '');
      if (!update) continue;
      update.result = (await first(a.outcome?.success?.payloads)) ?? null;
      update.failure = await failureText(a.outcome?.failure);
    } else if (e.workflowExecutionCompletedEventAttributes) {
      facts.close = { at, event: 'completed', failure: null };
    } else if (e.workflowExecutionFailedEventAttributes) {
      facts.close = {
        at,
        event: 'failed',
        failure: await failureText(e.workflowExecutionFailedEventAttributes.failure),
      };
    } else if (e.workflowExecutionCanceledEventAttributes) {
      facts.close = { at, event: 'cancelled', failure: 'the task was cancelled' };
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      const reason = e.workflowExecutionTerminatedEventAttributes.reason;
      facts.close = { at, event: 'terminated', failure: `terminated${reason ? `: ${reason}` : ''}` };
    } else if (e.workflowExecutionTimedOutEventAttributes) {
      facts.close = { at, event: 'timed-out', failure: 'the task timed out' };
    } else if (e.workflowExecutionContinuedAsNewEventAttributes) {
      facts.close = { at, event: 'continued-as-new', failure: null };
    }
  }
  return facts;
}

function configFacts(c: ConfigSnapshot): NonNullable<HistoryFacts['config']> {
  return {
    digest: c.digest,
    playbook: c.playbook.id,
    lead: c.lead.id,
    agents: [c.lead, ...Object.values(c.specialists)].map((a) => ({
      id: a.id,
      model: a.model,
      role: a.role,
    })),
    gates: c.gates,
    fixedPlan: c.playbook.fixedPlan ?? null,
  };
}

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
    return { ok: false, reason: `the status query failed: ${errorText(err)}` };
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
      reason: `the task ended ${execution.status.toLowerCase()} without a result: ${errorText(err)}`,
    };
  }
}

async function readText(file: string): Promise<Answer<string>> {
  try {
    return { ok: true, value: await fs.readFile(file, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      ok: false,
      reason:
        code === 'ENOENT'
          ? 'no such file (the worker writes reports to its BATON_REPORT_DIR: export where that folder is, or give a copy with --report <file>)'
          : errorText(err),
    };
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
  options: { reportFile?: string; workerTimeoutMs?: number; serverTimeoutMs?: number; now?: Date } = {},
): Promise<AuditRecord> {
  const description = await client.withDeadline(
    Date.now() + (options.serverTimeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS),
    () => client.workflow.getHandle(workflowId).describe(),
  );
  const execution: ExecutionFacts = {
    namespace: client.options.namespace,
    workflowId: description.workflowId,
    runId: description.runId,
    type: description.type,
    status: description.status.name,
    taskQueue: description.taskQueue,
    startTime: description.startTime.toISOString(),
    executionTime: description.executionTime?.toISOString() ?? null,
    closeTime: description.closeTime?.toISOString() ?? null,
    historyLength: description.historyLength,
    parent: description.parentExecution
      ? {
          workflowId: description.parentExecution.workflowId ?? '',
          runId: description.parentExecution.runId ?? '',
        }
      : null,
  };
  // Everything below describes this one run.
  const handle = client.workflow.getHandle(workflowId, execution.runId);
  const [status, result, history] = await Promise.all([
    readStatus(client, handle, execution.taskQueue, options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS),
    readResult(handle, execution),
    readHistory(client, handle).then(
      (value): Answer<HistoryFacts> => ({ ok: true, value }),
      (err): Answer<HistoryFacts> => ({
        ok: false,
        reason: `the event history could not be read: ${errorText(err)}`,
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
  let reportFiles: ReportFiles | undefined;
  if (target) {
    const provenancePath = provenancePathOf(target.path);
    const [text, provenanceText] = await Promise.all([readText(target.path), readText(provenancePath)]);
    reportFiles = { path: target.path, text, provenancePath, provenanceText };
  }
  return buildAuditRecord({ ...sources, reportFiles });
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

const GRPC_UNAVAILABLE = 14;

function unreachable(err: unknown): boolean {
  for (let cur: unknown = err; cur instanceof Error; cur = cur.cause)
    if (isGrpcServiceError(cur) && Number(cur.code) === GRPC_UNAVAILABLE) return true;
  return false;
}

/** The default place of the export: beside the reports. */
export function defaultOutPath(workflowId: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.resolve(env.BATON_REPORT_DIR || path.join(PROJECT_ROOT, 'reports'));
  return path.join(dir, `${safeName(workflowId)}.audit.json`);
}

/**
 * Runs one command line (without the `node script` prefix) and returns the exit code: 0 written,
 * 3 written but the report did not verify, 1 nothing written, 2 a usage error.
 */
export async function runAudit(argv: string[], deps: AuditDeps): Promise<number> {
  let args: AuditArgs | 'help';
  try {
    args = parseAuditArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    deps.err(`error: ${err.message}`);
    deps.err('');
    for (const line of USAGE.split('\n')) deps.err(line);
    return 2;
  }
  if (args === 'help') {
    for (const line of USAGE.split('\n')) deps.out(line);
    return 0;
  }
  const { workflowId } = args;
  const server = `the Temporal server${deps.address ? ` at ${deps.address}` : ''}`;
  let record: AuditRecord;
  try {
    record = await collectAudit(deps.client, workflowId, {
      reportFile: args.report,
      workerTimeoutMs: deps.workerTimeoutMs,
      serverTimeoutMs: deps.serverTimeoutMs,
      now: deps.now?.(),
    });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      deps.err(
        `error: no task with workflow id "${workflowId}" on this namespace (${deps.client.options.namespace})`,
      );
    } else if (isGrpcDeadlineError(err)) {
      const ms = deps.serverTimeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS;
      deps.err(
        `error: ${server} did not answer within ${ms / 1000} s: is it running, and is TEMPORAL_ADDRESS right?`,
      );
    } else if (unreachable(err)) {
      deps.err(`error: cannot reach ${server}: ${errorText(err)}`);
    } else {
      deps.err(`error: ${errorText(err)}`);
    }
    return 1;
  }

  const json = `${JSON.stringify(record, null, 2)}\n`;
  // With the JSON on standard output, everything else goes to standard error.
  const toStdout = args.out === '-';
  const say = toStdout ? deps.err : deps.out;
  if (toStdout) {
    deps.out(json.slice(0, -1));
  } else {
    const file = path.resolve(args.out ?? defaultOutPath(workflowId, deps.env ?? process.env));
    try {
      if (args.out === undefined) await fs.mkdir(path.dirname(file), { recursive: true });
      await fs.writeFile(file, json, 'utf8');
    } catch (err) {
      deps.err(`error: cannot write the export to ${file}: ${errorText(err)}`);
      return 1;
    }
    say(`wrote ${file}`);
  }
  for (const line of summaryLines(record)) say(line);
  for (const m of record.missing) deps.err(`warning: incomplete export: ${m.part}: ${m.reason}`);
  const v = record.verification;
  if (!v.verified && v.check !== 'no-report') {
    deps.err(`report NOT verified (${v.check}): ${v.reason}`);
    return 3;
  }
  return 0;
}

/** Connects as the worker does, runs one command, and closes the connection. */
async function main(argv: string[]): Promise<number> {
  let temporalOptions: TemporalOptions;
  let dataConverter: ReturnType<typeof dataConverterFromEnv>;
  try {
    temporalOptions = temporalOptionsFromEnv();
    // The worker's codec (payload encryption, if configured): history and results are read through it.
    dataConverter = dataConverterFromEnv();
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  // `--help` and usage errors answer without a server (a lazy connection that is never used);
  // otherwise connect first, so an unreachable server is reported as such, within a bound.
  let needsServer = false;
  try {
    needsServer = parseAuditArgs(argv) !== 'help';
  } catch {
    // runAudit reports the usage error.
  }
  let connection: Connection;
  try {
    connection = needsServer
      ? await Connection.connect({
          ...connectionOptions(temporalOptions),
          connectTimeout: DEFAULT_SERVER_TIMEOUT_MS,
        })
      : Connection.lazy(connectionOptions(temporalOptions));
  } catch (err) {
    console.error(
      `error: cannot reach the Temporal server at ${temporalOptions.address} within ${DEFAULT_SERVER_TIMEOUT_MS / 1000} s (${errorText(err)}): is it running, and are TEMPORAL_ADDRESS and TEMPORAL_TLS* right?`,
    );
    return 1;
  }
  try {
    const client = new Client({ connection, namespace: temporalOptions.namespace, dataConverter });
    return await runAudit(argv, {
      client,
      address: temporalOptions.address,
      out: (line) => console.log(line),
      err: (line) => console.error(line),
    });
  } finally {
    await connection.close().catch(() => undefined);
    // The export may be long and stdout a pipe: let it drain before runMain exits the process.
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  }
}

if (require.main === module) runMain(main);
