/**
 * Who may call Baton's activities: only Baton's own workflows, running on Baton's task queue.
 *
 * Anyone with write access to the namespace can run a workflow of their own, on a task queue of
 * their own with a worker of their own, that schedules activities on Baton's task queue with any
 * input: a model call with a made-up agent (any prompt, model or token cap, on the organisation's
 * key), or `publishReport` with a made-up provenance, which the worker would sign with its publisher
 * key. Activity inputs cannot tell who sent them, but the server tells the worker which workflow
 * execution scheduled each activity. So before any activity runs, this worker's activity inbound
 * interceptor checks that execution:
 *
 *   1. the activity was scheduled by a workflow (not started on its own);
 *   2. the workflow's type is one `workflows/index.ts` exports;
 *   3. the workflow runs on this worker's task queue (`DescribeWorkflowExecution`'s
 *      `executionConfig.taskQueue`): only Baton workers poll it, so the workflow runs Baton's code,
 *      whatever its type name says.
 *
 * A local activity (bookkeeping since v18, workflows/calls.ts) is not checked: no server hands it
 * out. The worker's own workflow code schedules it in the workflow task it is running, and runs it in
 * this process (`ctx.info.isLocal`, set by the SDK's core for exactly those), so its caller is one of
 * the workflows this worker registers (Baton's), polled from this worker's task queue: what the three
 * checks establish for an activity that came through the server. A workflow elsewhere can only
 * schedule a (remote) activity here, and that is checked.
 *
 * Anything else is refused with the non-retryable `CallerRefused`, naming the workflow, its type and
 * its queue (never the activity's input), and logged. The verdict is kept per run id (a run's type
 * and task queue never change) in a bounded LRU cache, so a task costs one describe per worker, not
 * one per activity. A describe that fails (server unavailable, no permission) is a retryable failure,
 * not a refusal: the activity runs when the check can be made. The outer limit: a rogue worker that
 * polls Baton's task queue itself runs whatever it likes (docs/security.md).
 */
import type { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory, NativeConnection } from '@temporalio/worker';
import { LRUCache } from 'lru-cache';
import { FailureTypes, failureMessage } from '../contract/failures';
import { safeText } from '../contract/text';
import * as workflows from '../workflows';

/** The workflow types a Baton worker registers: the only ones whose activities it runs. */
const BATON_WORKFLOW_TYPES: ReadonlySet<string> = new Set(Object.keys(workflows));

/** Verdicts kept per worker: more than the runs a worker has activities of at any one time. */
const CACHE_SIZE = 4096;

/** Longest workflow id, type or queue name quoted in a refusal (they are the caller's to choose). */
const MAX_QUOTED = 200;

/** Why an activity's caller is refused, or `undefined` when it may call. */
type Verdict = string | undefined;

export interface CallerCheckOptions {
  /** The worker's connection: the describe goes through it, with the worker's own credentials. */
  connection: NativeConnection;
  /** The worker's task queue: the one a calling workflow must run on. */
  taskQueue: string;
}

const quoted = (text: string): string => JSON.stringify(safeText(text.slice(0, MAX_QUOTED)));

/**
 * The activity interceptor that refuses callers other than Baton's workflows on `taskQueue` (see
 * the note above). One per worker: its cache lives as long as the worker.
 */
export function callerCheck(options: CallerCheckOptions): ActivityInterceptorsFactory {
  const verdicts: Verdicts = new LRUCache({
    max: CACHE_SIZE,
    // Concurrent activities of one run share one describe; a describe that fails is not kept.
    fetchMethod: async (runId, _stale, { context }) => {
      const queue = await taskQueueOf(options.connection, context.namespace, context.workflowId, runId);
      return {
        verdict:
          queue === options.taskQueue
            ? undefined
            : `runs on task queue ${quoted(queue)}, not on this worker's ${quoted(options.taskQueue)}`,
      };
    },
  });

  return (ctx: Context) => ({
    inbound: {
      async execute(input, next) {
        const verdict = await check(ctx, verdicts);
        if (verdict !== undefined) {
          const message = `activity ${ctx.info.activityType} refused: ${verdict}`;
          ctx.log.warn(message);
          throw ApplicationFailure.nonRetryable(message, FailureTypes.CallerRefused);
        }
        return next(input);
      },
    },
  });
}

type Verdicts = LRUCache<string, { verdict: Verdict }, { namespace: string; workflowId: string }>;

/** Why the activity of `ctx` may not run, or `undefined` when it may; throws (retryable) when it cannot tell. */
async function check(ctx: Context, verdicts: Verdicts): Promise<Verdict> {
  // Scheduled by a workflow this worker is running, so one of Baton's on this queue (see above).
  if (ctx.info.isLocal) return undefined;
  const { workflowExecution: execution, workflowType, namespace, activityType } = ctx.info;
  if (!execution || workflowType === undefined) return 'it was not scheduled by a workflow';
  const who = `the calling workflow ${quoted(execution.workflowId)} (run ${quoted(execution.runId)}, type ${quoted(workflowType)})`;
  if (!BATON_WORKFLOW_TYPES.has(workflowType)) {
    return `${who} is not one of Baton's workflows (${[...BATON_WORKFLOW_TYPES].join(', ')})`;
  }
  const found = await verdicts
    .fetch(execution.runId, { context: { namespace, workflowId: execution.workflowId } })
    .catch((err: unknown) => {
      throw new Error(`cannot check ${who} before running activity ${activityType}: ${failureMessage(err)}`);
    });
  if (!found) throw new Error(`cannot check ${who} before running activity ${activityType}: no answer`);
  return found.verdict === undefined ? undefined : `${who} ${found.verdict}`;
}

/** The task queue of a workflow run, as the server records it. */
async function taskQueueOf(
  connection: NativeConnection,
  namespace: string,
  workflowId: string,
  runId: string,
): Promise<string> {
  const described = await connection.workflowService.describeWorkflowExecution({
    namespace,
    execution: { workflowId, runId },
  });
  return described.executionConfig?.taskQueue?.name ?? '';
}
