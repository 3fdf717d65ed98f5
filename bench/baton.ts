/**
 * Running Baton tasks for the benchmark and reading their histories: start K tasks at once, time
 * each from the client's start call to its result, and trace every activity's scheduled, started
 * and completed times from the server's event history.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { researchTask } from '../workflows';
import { QUESTION } from './workload';
import { mapLimit } from '../lib/map-limit';

const EventType = temporal.api.enums.v1.EventType;

/** The marker the TypeScript SDK records a local activity's result in. */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

/** An error's message followed by its causes' (a workflow failure's reason is in its cause). */
export function causes(err: unknown): string {
  const messages: string[] = [];
  let e: unknown = err;
  for (; e instanceof Error && messages.length < 6; e = (e as { cause?: unknown }).cause)
    messages.push(e.message);
  if (e !== undefined && !(e instanceof Error)) messages.push(JSON.stringify(e));
  return messages.join(': ');
}

/** Rejects after `timeoutMs` with a message naming `what`; the timer never keeps the process alive. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** One task as the client saw it. */
export interface TaskTiming {
  workflowId: string;
  /** Client clock (`Date.now()`), when `start` was called and when the result arrived. */
  startedAt: number;
  finishedAt: number;
  eagerlyStarted: boolean;
}

/** K tasks started at once and awaited. */
export interface Batch {
  /** First start call to last result. */
  wallMs: number;
  tasks: TaskTiming[];
  handles: WorkflowHandle<typeof researchTask>[];
}

export interface BatchOptions {
  taskQueue: string;
  playbook: string;
  count: number;
  /** Workflow ids are `<prefix>-<i>`: unique per run. */
  prefix: string;
  /** Ask the server to hand the first workflow task straight to this client's worker. */
  requestEagerStart?: boolean;
  /** Start calls in flight at once (default: all). */
  startConcurrency?: number;
  /** Give up on the batch after this long. */
  timeoutMs: number;
}

/** Starts `count` tasks, waits for every result, and fails if any task did not complete. */
export async function runBatch(client: Client, options: BatchOptions): Promise<Batch> {
  const t0 = Date.now();
  const run = async (_: unknown, i: number): Promise<[TaskTiming, WorkflowHandle<typeof researchTask>]> => {
    const startedAt = Date.now();
    const handle = await client.workflow.start(researchTask, {
      taskQueue: options.taskQueue,
      workflowId: `${options.prefix}-${i + 1}`,
      args: [{ question: QUESTION, playbook: options.playbook }],
      ...(options.requestEagerStart ? { requestEagerStart: true } : {}),
    });
    const result = await handle.result().catch((err: unknown) => {
      throw new Error(`task ${handle.workflowId} failed: ${causes(err)}`, { cause: err });
    });
    if (result.outcome !== 'completed') throw new Error(`${handle.workflowId} ended ${result.outcome}`);
    return [
      {
        workflowId: handle.workflowId,
        startedAt,
        finishedAt: Date.now(),
        eagerlyStarted: handle.eagerlyStarted,
      },
      handle,
    ];
  };
  const ids = Array.from({ length: options.count });
  const done = await withTimeout(
    mapLimit(ids, options.startConcurrency ?? options.count, run),
    options.timeoutMs,
    `${options.count} task(s) of ${options.playbook} on ${options.taskQueue}`,
  );
  return {
    wallMs: Math.max(...done.map(([t]) => t.finishedAt)) - t0,
    tasks: done.map(([t]) => t),
    handles: done.map(([, h]) => h),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Histories

/** One activity's life, in server time (ms since the epoch, sub-millisecond precision). */
export interface ActivityTrace {
  type: string;
  scheduled: number;
  started?: number;
  completed?: number;
  /** When the workflow task that handled its completion finished: the workflow has moved on. */
  resumed?: number;
}

export interface HistoryTrace {
  events: number;
  /** The history's size as protobuf, as the server stores and sends it. */
  bytes: number;
  activities: ActivityTrace[];
  /** When the workflow started and when it closed (server time, ms since the epoch; NaN while open). */
  startedAt: number;
  closedAt: number;
  /** Workflow tasks completed, and local activities recorded (their marker events). */
  workflowTasks: number;
  localActivities: number;
  /** Child workflows started (batches of a large plan, decomposed steps). */
  children: Array<{ workflowId: string; runId: string }>;
}

/** A workflow and its children, grandchildren...: their histories added up. */
export interface TreeTrace extends HistoryTrace {
  /** Workflows in the tree (1 when there are no children). */
  workflows: number;
  /** Events of the top workflow's own history. */
  topEvents: number;
}

interface TimestampLike {
  seconds?: { toString(): string } | number | null;
  nanos?: number | null;
}

const eventMs = (ts: TimestampLike | null | undefined): number =>
  ts ? Number(ts.seconds ?? 0) * 1000 + (ts.nanos ?? 0) / 1e6 : Number.NaN;

/** Reads a workflow's history and traces its activities. */
export async function traceHistory(handle: WorkflowHandle): Promise<HistoryTrace> {
  const history = await handle.fetchHistory();
  const events = history.events ?? [];
  const byScheduledId = new Map<number, ActivityTrace>();
  const activities: ActivityTrace[] = [];
  const children: HistoryTrace['children'] = [];
  let awaitingResume: ActivityTrace[] = [];
  let [workflowTasks, localActivities] = [0, 0];
  let [startedAt, closedAt] = [Number.NaN, Number.NaN];
  for (const event of events) {
    const at = eventMs(event.eventTime);
    switch (event.eventType) {
      case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: {
        const trace: ActivityTrace = {
          type: event.activityTaskScheduledEventAttributes?.activityType?.name ?? '?',
          scheduled: at,
        };
        byScheduledId.set(Number(event.eventId), trace);
        activities.push(trace);
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED: {
        const trace = byScheduledId.get(Number(event.activityTaskStartedEventAttributes?.scheduledEventId));
        if (trace) trace.started = at;
        break;
      }
      case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: {
        const trace = byScheduledId.get(Number(event.activityTaskCompletedEventAttributes?.scheduledEventId));
        if (trace) {
          trace.completed = at;
          awaitingResume.push(trace);
        }
        break;
      }
      case EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED: {
        const child = event.childWorkflowExecutionStartedEventAttributes?.workflowExecution;
        if (child?.workflowId && child.runId)
          children.push({ workflowId: child.workflowId, runId: child.runId });
        break;
      }
      case EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        for (const trace of awaitingResume) trace.resumed = at;
        awaitingResume = [];
        workflowTasks += 1;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
        startedAt = at;
        break;
      case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
        closedAt = at;
        break;
      case EventType.EVENT_TYPE_MARKER_RECORDED:
        if (event.markerRecordedEventAttributes?.markerName === LOCAL_ACTIVITY_MARKER) localActivities += 1;
        break;
      default:
        break;
    }
  }
  return {
    events: events.length,
    bytes: temporal.api.history.v1.History.encode(history).finish().length,
    activities,
    startedAt,
    closedAt,
    workflowTasks,
    localActivities,
    children,
  };
}

/** Traces a workflow and every workflow below it, adding their histories up. */
export async function traceTree(handle: WorkflowHandle): Promise<TreeTrace> {
  const top = await traceHistory(handle);
  const tree: TreeTrace = { ...top, activities: [...top.activities], workflows: 1, topEvents: top.events };
  const queue = [...top.children];
  for (let child = queue.shift(); child; child = queue.shift()) {
    const trace = await traceHistory(handle.client.getHandle(child.workflowId, child.runId));
    tree.workflows += 1;
    tree.events += trace.events;
    tree.bytes += trace.bytes;
    tree.workflowTasks += trace.workflowTasks;
    tree.localActivities += trace.localActivities;
    tree.activities.push(...trace.activities);
    queue.push(...trace.children);
  }
  return tree;
}

/** The activities of one type, in the order they were scheduled. */
export const activitiesOf = (trace: HistoryTrace, type: string): ActivityTrace[] =>
  trace.activities.filter((a) => a.type === type).sort((a, b) => a.scheduled - b.scheduled);

/**
 * Per-call times of a chain of specialist steps: the cycle from one step's scheduling to the next
 * one's (the last one: to the synthesis), split into dispatch (scheduled → started), execution
 * (started → completed) and return (completed → the workflow task that schedules the next call).
 */
export function chainCycles(trace: HistoryTrace): {
  cycle: number[];
  dispatch: number[];
  execution: number[];
  back: number[];
} {
  const steps = activitiesOf(trace, 'runSpecialist');
  const next = [...steps.slice(1), ...activitiesOf(trace, 'synthesizeReport').slice(0, 1)];
  const out = {
    cycle: [] as number[],
    dispatch: [] as number[],
    execution: [] as number[],
    back: [] as number[],
  };
  steps.forEach((s, i) => {
    const following = next[i];
    if (!following || s.started === undefined || s.completed === undefined) return;
    out.cycle.push(following.scheduled - s.scheduled);
    out.dispatch.push(s.started - s.scheduled);
    out.execution.push(s.completed - s.started);
    out.back.push(following.scheduled - s.completed);
  });
  return out;
}
