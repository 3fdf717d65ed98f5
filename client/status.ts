/**
 * Asking a task for its status. Queries (and Updates) are answered by a worker, not by the server:
 * with no worker polling the task's queue they would wait indefinitely, so every call here has a
 * deadline, and past it an error that says what to check.
 */
import {
  isGrpcDeadlineError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
} from '@temporalio/client';
import type { PlanStep } from '../config/schema';
import { status as statusQuery, type StepStatus, type TaskStatus } from '../contract/messages';

/** How long the CLIs wait for a task's worker to answer a query or an Update. */
export const DEFAULT_WORKER_TIMEOUT_MS = 20_000;

/** No worker answered a task in time. The message names the task queue a worker should poll. */
export class WorkerTimeoutError extends Error {
  override name = 'WorkerTimeoutError';
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

export interface AskOptions {
  /** How long to wait for the worker; default {@link DEFAULT_WORKER_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Added to the timeout's message, e.g. what may still happen and how to check. */
  afterwards?: string;
}

/**
 * Runs `fn`, RPCs the task's worker must answer, with a deadline; past it, a
 * {@link WorkerTimeoutError} naming the task queue a worker should poll.
 */
export async function askWorker<R>(
  client: Client,
  workflowId: string,
  fn: () => Promise<R>,
  options: AskOptions = {},
): Promise<R> {
  const ms = options.timeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS;
  const deadline = Date.now() + ms;
  try {
    return await client.withDeadline(deadline, fn);
  } catch (err) {
    if (!workerTimedOut(err, deadline)) throw err;
    // Describing needs only the server, so it can name the queue a worker should poll.
    const queue = await client.workflow
      .getHandle(workflowId)
      .describe()
      .then(
        (d) => `task queue "${d.taskQueue}"`,
        () => 'its task queue',
      );
    throw new WorkerTimeoutError(
      `task ${workflowId} did not answer within ${ms / 1000} s: is a Baton worker polling ${queue}?${options.afterwards ?? ''}`,
      { cause: err },
    );
  }
}

/** The task's `status` query, within the worker timeout ({@link askWorker}). */
export function queryStatus(client: Client, workflowId: string, timeoutMs?: number): Promise<TaskStatus> {
  return askWorker(client, workflowId, () => client.workflow.getHandle(workflowId).query(statusQuery), {
    timeoutMs,
  });
}

/** A status's steps; before execution, when it has a plan but no step states yet, the plan's steps as pending. */
export function stepsOf(s: TaskStatus): StepStatus[] {
  return s.steps.length
    ? s.steps
    : (s.plan?.steps ?? []).map((p: PlanStep) => ({ ...p, state: 'pending' as const }));
}

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

/** Most child tasks {@link queryTaskTree} asks, across all levels. */
export const MAX_CHILD_TASKS = 50;

/**
 * A task's status and its decomposed steps' child tasks', by child workflow id: their status, or
 * why not (`{ error }`; tell them apart by `phase`: a failed child's status has an `error` too).
 */
export interface TaskTree {
  status: TaskStatus;
  children: Map<string, TaskStatus | { error: string }>;
}

/**
 * The child tasks a child's own tree may show: all but itself. Rendering a tree through this ends
 * even when a status names an ancestor as its child.
 */
export function childrenBelow(children: TaskTree['children'], id: string): TaskTree['children'] {
  const rest = new Map(children);
  rest.delete(id);
  return rest;
}

/**
 * The task's status and, level by level, its decomposed steps' child tasks' (each shows its own
 * plan), at most {@link MAX_CHILD_TASKS} of them. A child that does not answer is kept with the error.
 */
export async function queryTaskTree(
  client: Client,
  workflowId: string,
  timeoutMs?: number,
): Promise<TaskTree> {
  const status = await queryStatus(client, workflowId, timeoutMs);
  const children: TaskTree['children'] = new Map();
  let level = [status];
  while (level.length && children.size < MAX_CHILD_TASKS) {
    const ids = level
      .flatMap((s) => s.steps.map((step) => step.childWorkflowId))
      .filter((id): id is string => id !== undefined && !children.has(id))
      .slice(0, MAX_CHILD_TASKS - children.size);
    const answers = await Promise.all(
      ids.map((id) =>
        queryStatus(client, id, timeoutMs).catch((err: unknown) => ({ error: (err as Error).message })),
      ),
    );
    ids.forEach((id, i) => children.set(id, answers[i]!));
    level = answers.filter((a): a is TaskStatus => 'phase' in a);
  }
  return { status, children };
}
