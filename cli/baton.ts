/**
 * `npm run baton -- <command>`: the reviewer's side of Baton, against a Temporal server where tasks
 * already run (a worker is needed for `show` and the decisions; `pending` only asks visibility).
 *
 *   pending [--approver <id>]                  tasks waiting for a decision (search attributes)
 *   show <workflow id>                          question, plan, pending gate, usage, audit trail
 *   approve | reject <workflow id>              decide at the pending gate (the `decide` Update)
 *   request-changes <workflow id> --comment <text> [--rerun s1,s2]
 *   watch <workflow id>                         follow a task live until it ends (cli/live.ts)
 *
 * The command logic lives in {@link runCli}, which takes its client and output as arguments, so
 * the tests run it in-process against the test server and read exactly what a user would see.
 */
import {
  Client,
  Connection,
  isGrpcDeadlineError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowExecutionInfo,
  type WorkflowHandle,
} from '@temporalio/client';
import os from 'node:os';
import type { PlanStep } from '../config/schema';
import { dataConverterFromEnv } from '../workers/codec';
import { connectionOptions, temporalOptionsFromEnv, type TemporalOptions } from '../workers/options';
import {
  BATON_AWAITING,
  BATON_PENDING_GATE,
  BATON_PHASE,
  decide,
  GATES,
  status as statusQuery,
  type DecideRequest,
  type DecideResult,
  type Decision,
  type Gate,
  type StepStatus,
  type TaskStatus,
} from '../contract/messages';
import { formatAudit, formatPendingGate, formatStep, formatUsageExtras } from './format';
import { childStatuses, createView, type TerminalLike } from './live';
import { runMain } from '../lib/cli';

/** The usage text printed by `--help` and after every usage error. */
export const USAGE = `usage: npm run baton -- <command> [options]

commands:
  pending [--approver <id>]          list tasks waiting for a decision (for <id>, or for anyone)
  show <workflow id>                 a task's question, plan, pending gate, token usage and audit trail
  approve <workflow id>              approve at the pending gate
  reject <workflow id>               reject at the pending gate (ends the task)
  request-changes <workflow id> --comment <text> [--rerun <step,step>]
                                     send the plan or report back with what to change; with --rerun
                                     (report gate only), those steps run again first
  watch <workflow id>                follow a task live until it ends: phase, progress, steps, tokens,
                                     pending gate; exits 0 if it completed, 1 otherwise

decision options (approve, reject, request-changes):
  --gate plan|report                 the gate you mean; refused if another gate is pending
  --comment <text>                   a comment kept in the audit trail
  --as <identity>                    who decides (default: $BATON_APPROVER, else your user name)

Connects like the worker: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TEMPORAL_TLS*.`;

/** What {@link runCli} needs from its surroundings; tests pass their own. */
export interface CliDeps {
  client: Client;
  /** One line of normal output. */
  out: (line: string) => void;
  /** One line of error output. */
  err: (line: string) => void;
  /** Where `BATON_APPROVER` is read; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How long `show` and the decisions wait for the task's worker to answer; default {@link DEFAULT_WORKER_TIMEOUT_MS}. */
  workerTimeoutMs?: number;
  /**
   * Where `watch` redraws its live view when it is a TTY (`process.stdout` from the command line);
   * without one, `watch` prints plain lines to `out` when something changes.
   */
  terminal?: TerminalLike & { isTTY?: boolean };
  /** How often `watch` asks the task for its status; default {@link WATCH_POLL_MS}. */
  pollMs?: number;
}

/** How often `watch` asks the task for its status. */
export const WATCH_POLL_MS = 1000;

/**
 * Queries and Updates are answered by a worker, not the server: with no worker running they would
 * wait indefinitely, so the CLI gives up after this long and says what to check.
 */
export const DEFAULT_WORKER_TIMEOUT_MS = 20_000;

/** A mistake in the command line: reported with the usage text and exit code 2. */
class UsageError extends Error {}

/** A failure whose message already says everything the user needs: printed as is, exit code 1. */
class CliError extends Error {}

/**
 * A visibility query string literal. Quotes are doubled, the SQL form Temporal's query converter
 * is tested with. Backslashes stay as they are: on the dev server (Temporal 1.32) `'a\b'` matches
 * the value `a\b` and `'a\\b'` matches nothing. Server-side limits remain for values that start
 * or end with a quote or hold a backslash before one (temporalio/temporal#12019).
 */
function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The visibility query behind `pending`: running tasks with a gate open, and with `approver`, only
 * those that person may still decide (named, or `*` for anyone). The README shows these queries
 * for use with `temporal workflow list --query`.
 */
export function pendingQuery(approver?: string): string {
  const base = `${BATON_PENDING_GATE.name} IS NOT NULL AND ExecutionStatus = 'Running'`;
  return approver === undefined ? base : `${base} AND ${BATON_AWAITING.name} IN (${quote(approver)}, '*')`;
}

// ---------------------------------------------------------------------------------------------------------
// Command-line parsing

type Command = 'pending' | 'show' | 'approve' | 'reject' | 'request-changes' | 'watch';

const DECISION_OF: Record<'approve' | 'reject' | 'request-changes', Decision> = {
  approve: 'approve',
  reject: 'reject',
  'request-changes': 'requestChanges',
};

/** Which options each command takes; all of them take a value. */
const OPTIONS: Record<Command, readonly string[]> = {
  pending: ['approver'],
  show: [],
  approve: ['gate', 'comment', 'as'],
  reject: ['gate', 'comment', 'as'],
  'request-changes': ['gate', 'comment', 'as', 'rerun'],
  watch: [],
};

/** How many positional arguments each command takes (the workflow id, or nothing). */
const POSITIONALS: Record<Command, number> = {
  pending: 0,
  show: 1,
  approve: 1,
  reject: 1,
  'request-changes': 1,
  watch: 1,
};

interface Parsed {
  command: Command;
  positionals: string[];
  options: Map<string, string>;
}

const isCommand = (word: string): word is Command => Object.hasOwn(OPTIONS, word);

function parse(argv: readonly string[]): Parsed {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('a command is required');
  if (!isCommand(command)) throw new UsageError(`unknown command "${command}"`);
  const positionals: string[] = [];
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!OPTIONS[command].includes(name)) throw new UsageError(`unknown option --${name} for ${command}`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      value = rest[++i];
      // A following option means the value was forgotten, not that the option is its value.
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
    }
    if (options.has(name)) throw new UsageError(`--${name} given twice`);
    options.set(name, value);
  }
  const expected = POSITIONALS[command];
  if (positionals.length < expected) throw new UsageError(`${command} needs a workflow id`);
  if (positionals.length > expected) {
    throw new UsageError(`unexpected argument "${positionals[expected]}" for ${command}`);
  }
  return { command, positionals, options };
}

// ---------------------------------------------------------------------------------------------------------
// pending

/** `*` is how the workflow says "anyone"; people read the word better. Also used by the web inbox. */
export const who = (awaiting: readonly string[] | undefined): string =>
  !awaiting?.length ? '(nobody listed)' : awaiting.map((a) => (a === '*' ? 'anyone' : a)).join(', ');

/**
 * Running tasks waiting at a gate ({@link pendingQuery}), for `approver` or for anyone, oldest
 * first: the task that has waited longest is the one to look at. Shared with the web inbox.
 */
export async function listPending(client: Client, approver?: string): Promise<WorkflowExecutionInfo[]> {
  const tasks: WorkflowExecutionInfo[] = [];
  for await (const execution of client.workflow.list({ query: pendingQuery(approver) }))
    tasks.push(execution);
  return tasks.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

async function pending(client: Client, approver: string | undefined, out: CliDeps['out']): Promise<number> {
  const tasks = await listPending(client, approver);
  if (tasks.length === 0) {
    out(
      approver === undefined
        ? 'no task is waiting for a decision'
        : `no task is waiting for a decision by ${approver}`,
    );
    return 0;
  }
  const width = Math.max(...tasks.map((t) => t.workflowId.length));
  for (const t of tasks) {
    const attrs = t.typedSearchAttributes;
    const gate = attrs.get(BATON_PENDING_GATE) ?? '?';
    const phase = attrs.get(BATON_PHASE);
    out(
      `${t.workflowId.padEnd(width)}  ${gate} gate  waiting for ${who(attrs.get(BATON_AWAITING))}  started ${t.startTime.toISOString()}${phase ? `  (${phase})` : ''}`,
    );
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// show

/** Steps in an order where each comes after its dependencies, otherwise as the plan lists them. */
export function dependencyOrder<T extends { id: string; dependsOn: string[] }>(steps: readonly T[]): T[] {
  const placed = new Set<string>();
  const ordered: T[] = [];
  let remaining = [...steps];
  while (remaining.length) {
    const ready = remaining.filter((s) =>
      s.dependsOn.every((d) => placed.has(d) || !steps.some((x) => x.id === d)),
    );
    // The workflow refuses cyclic plans, but a display must never loop: show the rest as listed.
    const next = ready.length ? ready : remaining;
    for (const s of next) {
      placed.add(s.id);
      ordered.push(s);
    }
    remaining = remaining.filter((s) => !placed.has(s.id));
  }
  return ordered;
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim();

/** The plan as a tree: one branch per step, its details as leaves. */
function planTree(s: TaskStatus): string[] {
  // Before execution the status has the plan but no step states yet; the plan's steps are then pending.
  const steps: StepStatus[] = s.steps.length
    ? s.steps
    : (s.plan?.steps ?? []).map((p: PlanStep) => ({ ...p, state: 'pending' as const }));
  if (!s.plan && !steps.length) return ['plan: none yet'];
  const lines = [
    `plan (${steps.length} step${steps.length === 1 ? '' : 's'})${s.plan ? `: ${oneLine(s.plan.rationale)}` : ''}`,
  ];
  const ordered = dependencyOrder(steps);
  ordered.forEach((step, i) => {
    const last = i === ordered.length - 1;
    lines.push(`${last ? '└─' : '├─'} ${formatStep(step)}`);
    const leaves = [
      ...(step.dependsOn.length ? [`after ${step.dependsOn.join(', ')}`] : []),
      ...(step.decompose ? ['decomposes: planned again one level deeper, as a child task'] : []),
      ...(step.revision ? [`re-run ${step.revision} time(s) at a reviewer's request`] : []),
      `question: ${oneLine(step.question)}`,
    ];
    const indent = last ? '   ' : '│  ';
    leaves.forEach((leaf, j) => lines.push(`${indent}${j === leaves.length - 1 ? '└─' : '├─'} ${leaf}`));
  });
  return lines;
}

/** Whether `err`, or an error it wraps, is a gRPC call ended with status CANCELLED (1). */
function isGrpcCancelled(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if ((e as Error & { code?: unknown }).code === 1) return true;
  }
  return false;
}

/**
 * Whether a call to a task's worker (a query or an Update) failed because nobody answered by
 * `deadline`: past it a query fails with DEADLINE_EXCEEDED, or on a busy machine sometimes with
 * CANCELLED; an Update's long poll may end as CANCELLED.
 */
export function workerTimedOut(err: unknown, deadline: number): boolean {
  return (
    isGrpcDeadlineError(err) ||
    err instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
    (Date.now() >= deadline && isGrpcCancelled(err))
  );
}

/** Runs `fn`, RPCs the task's worker must answer, with a deadline; past it, an error saying what to check. */
export async function askWorker<R>(
  deps: Pick<CliDeps, 'client' | 'workerTimeoutMs'>,
  workflowId: string,
  afterwards: string,
  fn: () => Promise<R>,
): Promise<R> {
  const ms = deps.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS;
  const deadline = Date.now() + ms;
  try {
    return await deps.client.withDeadline(deadline, fn);
  } catch (err) {
    if (!workerTimedOut(err, deadline)) throw err;
    // Describing needs only the server, so it can name the queue a worker should poll.
    const queue = await deps.client.workflow
      .getHandle(workflowId)
      .describe()
      .then(
        (d) => `task queue "${d.taskQueue}"`,
        () => 'its task queue',
      );
    throw new CliError(
      `task ${workflowId} did not answer within ${ms / 1000} s: is a Baton worker polling ${queue}?${afterwards}`,
      { cause: err },
    );
  }
}

async function show(deps: CliDeps, workflowId: string): Promise<number> {
  const { out } = deps;
  const s = await askWorker(deps, workflowId, '', () =>
    deps.client.workflow.getHandle(workflowId).query(statusQuery),
  );
  out(`task ${s.workflowId}`);
  out(`question: ${oneLine(s.question)}`);
  out(`playbook: ${s.playbook}${s.depth ? ` (child task, depth ${s.depth})` : ''}`);
  out(`phase: ${s.phase}`);
  for (const line of planTree(s)) out(line);
  out(s.pendingGate ? formatPendingGate(s.pendingGate) : 'no gate is pending');
  const byAgent = Object.entries(s.usage.byAgent)
    .map(([agent, u]) => `${agent} ${u.inputTokens} in / ${u.outputTokens} out`)
    .join(', ');
  out(`tokens: ${s.usage.inputTokens} in, ${s.usage.outputTokens} out${byAgent ? ` (${byAgent})` : ''}`);
  for (const line of formatUsageExtras(s.usage)) out(line);
  if (s.report) out(`report: ${s.report.path ?? `draft ${s.report.artifact.id}`}`);
  if (s.error) out(`error: ${s.error}`);
  out(
    s.audit.length ? `audit (${s.audit.length} entr${s.audit.length === 1 ? 'y' : 'ies'}):` : 'audit: empty',
  );
  for (const entry of s.audit) out(`  ${formatAudit(entry)}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Decisions

/** How an accepted decision reads, e.g. `accepted: waiting (plan gate, 1 of 2 approvals)`. */
export function formatDecideResult(r: DecideResult): string {
  const count =
    r.outcome === 'approved' || r.outcome === 'waiting' ? `, ${r.approvals} of ${r.quorum} approvals` : '';
  return `accepted: ${r.outcome} (${r.gate} gate${count})`;
}

/** The outcome of {@link sendDecision}: the workflow's answer, or its reason for refusing. */
export type DecisionOutcome = { accepted: true; result: DecideResult } | { accepted: false; reason: string };

/**
 * Sends a decision through the `decide` Update. A refusal by the workflow's validator (wrong gate,
 * not an approver, missing comment…) comes back as `accepted: false` with the workflow's own words;
 * anything else (no such workflow, server unreachable) is thrown.
 */
export async function sendDecision(handle: WorkflowHandle, request: DecideRequest): Promise<DecisionOutcome> {
  try {
    return { accepted: true, result: await handle.executeUpdate(decide, { args: [request] }) };
  } catch (err) {
    if (!(err instanceof WorkflowUpdateFailedError)) throw err;
    // The validator's Error arrives as the ApplicationFailure cause; its message is the reason.
    return { accepted: false, reason: err.cause?.message ?? err.message };
  }
}

/**
 * Sends `request` to the task through {@link sendDecision}, giving up after the worker timeout
 * ({@link askWorker}). A task that has finished is a refusal saying so; an unknown workflow id
 * throws `WorkflowNotFoundError`. Shared by the CLI and the web inbox.
 */
export async function decideTask(
  deps: Pick<CliDeps, 'client' | 'workerTimeoutMs'>,
  workflowId: string,
  request: DecideRequest,
): Promise<DecisionOutcome> {
  const handle = deps.client.workflow.getHandle(workflowId);
  try {
    // Temporal keeps an Update it has admitted: if the worker is only late, the decision may still land.
    return await askWorker(
      deps,
      workflowId,
      ` The decision may still reach the task when a worker picks it up; check with: npm run baton -- show ${workflowId}`,
      () => sendDecision(handle, request),
    );
  } catch (err) {
    // The server says "not found" both for an unknown id and for a task that has finished; tell them apart.
    if (!(err instanceof WorkflowNotFoundError)) throw err;
    const description = await handle.describe();
    return {
      accepted: false,
      reason: `task ${workflowId} is no longer running (${description.status.name.toLowerCase()}); nothing is left to decide`,
    };
  }
}

const isGate = (word: string): word is Gate => (GATES as readonly string[]).includes(word);

async function decideCommand(deps: CliDeps, parsed: Parsed, decision: Decision): Promise<number> {
  const workflowId = parsed.positionals[0]!;
  const gate = parsed.options.get('gate');
  if (gate !== undefined && !isGate(gate)) {
    throw new UsageError(`--gate must be ${GATES.join(' or ')} (got "${gate}")`);
  }
  const rerun = parsed.options.get('rerun');
  const rerunSteps = rerun
    ?.split(',')
    .map((id) => id.trim())
    .filter(Boolean);
  if (rerunSteps && rerunSteps.length === 0)
    throw new UsageError('--rerun needs step ids, e.g. --rerun s1,s2');
  const env = deps.env ?? process.env;
  const request: DecideRequest = {
    decision,
    by: parsed.options.get('as') || env.BATON_APPROVER || os.userInfo().username,
    ...(gate ? { gate } : {}),
    ...(parsed.options.has('comment') ? { comment: parsed.options.get('comment') } : {}),
    ...(rerunSteps ? { rerunSteps } : {}),
  };
  // Whether a comment is required, which steps exist, who may decide: all of it is the workflow's
  // call (workflows/gates.ts), so the CLI checks nothing more and reports the workflow's words.
  const outcome = await decideTask(deps, workflowId, request);
  if (!outcome.accepted) {
    deps.err(`refused: ${outcome.reason}`);
    return 1;
  }
  deps.out(formatDecideResult(outcome.result));
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// watch

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Follows a task until it closes: a live frame on a terminal, plain lines otherwise (cli/live.ts).
 * Prints the outcome and the report's path; 0 when the task completed, 1 when it was rejected,
 * failed, was cancelled, terminated or timed out.
 */
async function watch(deps: CliDeps, workflowId: string): Promise<number> {
  const { client } = deps;
  const handle = client.workflow.getHandle(workflowId);
  // An unknown id fails here, before anything is drawn.
  const described = await handle.describe();
  let closed = described.status.name !== 'RUNNING';
  // A closed task's status needs a worker to replay it, and its outcome does not: wait less for one.
  const ms = Math.min(deps.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS, closed ? 5000 : Infinity);
  const ask = (id: string): Promise<TaskStatus> =>
    client.withDeadline(Date.now() + ms, () => client.workflow.getHandle(id).query(statusQuery));
  const ended = handle.result().then(
    (value: unknown) => ({ value }),
    (error: unknown) => ({ error }),
  );
  void ended.then(() => (closed = true));
  const view = createView({
    terminal: deps.terminal,
    print: deps.out,
    gate: true,
    restoreOnExit: deps.terminal === process.stdout,
  });
  try {
    let children = new Map<string, TaskStatus>();
    for (let first = true; ; first = false) {
      const last = closed;
      try {
        // The first answer says whether a worker serves the task at all (as `show` does).
        const s = first
          ? await askWorker({ ...deps, workerTimeoutMs: ms }, workflowId, '', () => handle.query(statusQuery))
          : await ask(workflowId);
        children = await childStatuses(s, ask, children);
        view.update(s, children);
      } catch (err) {
        // A closed task's status needs a worker to replay it; without one the outcome still says it all.
        if (first && !last) throw err;
        const why = err instanceof Error ? err.message : String(err);
        view.note(last ? `no last status: ${why}` : `the task does not answer: ${why}; retrying`);
      }
      if (last) break;
      await Promise.race([ended, sleep(deps.pollMs ?? WATCH_POLL_MS)]);
    }
  } finally {
    view.close();
  }
  const end = await ended;
  if ('error' in end) {
    const status = await handle.describe().then(
      (d) => d.status.name.toLowerCase().replace('_', ' '),
      () => 'failed',
    );
    const why =
      end.error instanceof WorkflowFailedError
        ? (end.error.cause?.message ?? end.error.message)
        : end.error instanceof Error
          ? end.error.message
          : String(end.error);
    deps.err(`outcome: ${status}: ${why}`);
    return 1;
  }
  const result = (end.value ?? {}) as { outcome?: string; reportPath?: string };
  if (result.outcome === 'rejected') {
    deps.out('outcome: rejected; no report was published');
    return 1;
  }
  deps.out(`outcome: ${result.outcome ?? 'completed'}`);
  if (result.reportPath) deps.out(`Report: ${result.reportPath}`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

/**
 * Runs one command line (without the `node script` prefix) and returns the exit code: 0 done,
 * 1 refused or failed (unknown workflow id, a refused decision, a server error), 2 a usage error.
 */
export async function runCli(argv: string[], deps: CliDeps): Promise<number> {
  if (argv.length === 0 || argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
    for (const line of USAGE.split('\n')) deps.out(line);
    return 0;
  }
  let parsed: Parsed | undefined;
  try {
    parsed = parse(argv);
    switch (parsed.command) {
      case 'pending':
        return await pending(deps.client, parsed.options.get('approver'), deps.out);
      case 'show':
        return await show(deps, parsed.positionals[0]!);
      case 'watch':
        return await watch(deps, parsed.positionals[0]!);
      default:
        return await decideCommand(deps, parsed, DECISION_OF[parsed.command]);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      deps.err(`error: ${err.message}`);
      deps.err('');
      for (const line of USAGE.split('\n')) deps.err(line);
      return 2;
    }
    if (err instanceof WorkflowNotFoundError) {
      const id = parsed?.positionals[0] ?? err.workflowId;
      deps.err(
        `error: no task with workflow id "${id}" on this namespace (${deps.client.options.namespace})`,
      );
      return 1;
    }
    // The SDK's ServiceError says only which call failed; its cause says why (unreachable, denied…).
    const cause =
      err instanceof Error && !(err instanceof CliError) && err.cause instanceof Error
        ? `: ${err.cause.message}`
        : '';
    deps.err(`error: ${err instanceof Error ? err.message : String(err)}${cause}`);
    return 1;
  }
}

/** Connects as the worker does, runs one command, and closes the connection. */
async function main(argv: string[]): Promise<number> {
  let temporal: TemporalOptions;
  let dataConverter: ReturnType<typeof dataConverterFromEnv>;
  try {
    temporal = temporalOptionsFromEnv();
    dataConverter = dataConverterFromEnv();
  } catch (err) {
    console.error(`error: ${(err as Error).message}`);
    return 1;
  }
  // Lazy: `--help` and usage errors answer without a server; the first RPC connects.
  const connection = Connection.lazy(connectionOptions(temporal));
  try {
    const client = new Client({ connection, namespace: temporal.namespace, dataConverter });
    return await runCli(argv, {
      client,
      out: (line) => console.log(line),
      err: (line) => console.error(line),
      terminal: process.stdout,
    });
  } finally {
    await connection.close().catch(() => undefined);
  }
}

if (require.main === module) runMain(main);
