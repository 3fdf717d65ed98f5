/**
 * Mode 3: Baton itself. A real `researchTask` workflow on a real Temporal server and worker, with
 * the harness approving each gate through the `decide` Update as {@link EVAL_APPROVER}, as a person
 * would. Tokens come from the task's provenance (every agent's calls, children included).
 */
import {
  WorkflowFailedError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { getArtifact } from '../activities/artifacts';
import type { ObjectStore } from '../activities/store';
import { researchTask } from '../workflows';
import { decide, status as statusQuery, type Gate, type TaskStatus } from '../contract/messages';
import { addUsage, describe, ZERO_USAGE } from './model';
import type { ModeOutcome, Source } from './modes';

/** Who the harness decides as. Gates whose approvers do not include it (or `*`) refuse it, and the run says so. */
export const EVAL_APPROVER = 'eval-harness';

export interface BatonRunContext {
  client: Client;
  taskQueue: string;
  playbook: string;
  /** The worker's artifact store, where the report body is read from. */
  artifacts: ObjectStore;
  /** Give up on a task (and cancel it) after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
}

class RunStopped extends Error {}

/** Why the harness stopped the runs (its signal's reason). */
const stopReason = (signal: AbortSignal): string => {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : 'interrupted';
};

/** A call to the server that the harness's signal aborts (a dead server must not hold up an interrupt). */
const abortable = <R>(ctx: BatonRunContext, fn: () => Promise<R>): Promise<R> =>
  ctx.signal ? ctx.client.connection.withAbortSignal(ctx.signal, fn) : fn();

/** A last call after the run stopped: bounded, since the server may be gone. */
const bounded = <R>(ctx: BatonRunContext, fn: () => Promise<R>): Promise<R> =>
  ctx.client.connection.withDeadline(Date.now() + 5_000, fn);

/** The status, waiting out the few seconds a new task may not answer queries yet. */
async function queryStatus(
  ctx: BatonRunContext,
  handle: WorkflowHandle,
  deadline: number,
): Promise<TaskStatus> {
  for (;;) {
    if (ctx.signal?.aborted) throw new RunStopped(stopReason(ctx.signal));
    try {
      return await abortable(ctx, () => handle.query(statusQuery));
    } catch (err) {
      if (ctx.signal?.aborted) throw new RunStopped(stopReason(ctx.signal));
      if (Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

/** Runs the question as a Baton task to the end, approving each gate; never throws. */
export async function runBaton(
  ctx: BatonRunContext,
  question: string,
  workflowId: string,
): Promise<ModeOutcome> {
  const empty = { usage: ZERO_USAGE, models: [], workflowId };
  let handle: WorkflowHandle<typeof researchTask>;
  try {
    handle = await ctx.client.workflow.start(researchTask, {
      taskQueue: ctx.taskQueue,
      workflowId,
      args: [{ question, playbook: ctx.playbook }],
    });
  } catch (err) {
    return { ...empty, ok: false, error: `could not start the task: ${describe(err)}` };
  }
  const deadline = Date.now() + ctx.timeoutMs;
  const result = handle.result();
  let done = false;
  void result.then(
    () => (done = true),
    () => (done = true),
  );
  const approved = new Set<Gate>();
  // The latest status seen: a task stopped early still reports the tokens it had spent.
  let last: TaskStatus | undefined;
  try {
    while (!done) {
      if (ctx.signal?.aborted) throw new RunStopped(stopReason(ctx.signal));
      if (Date.now() > deadline)
        throw new RunStopped(`timed out after ${Math.round(ctx.timeoutMs / 1000)} s`);
      const s = await queryStatus(ctx, handle, deadline);
      last = s;
      const gate = s.pendingGate;
      if (gate && !gate.approvals.some((a) => a.by === EVAL_APPROVER)) {
        try {
          const answer = await abortable(ctx, () =>
            handle.executeUpdate(decide, {
              args: [
                {
                  decision: 'approve',
                  by: EVAL_APPROVER,
                  gate: gate.gate,
                  comment: 'auto-approved by the evaluation harness',
                },
              ],
            }),
          );
          approved.add(gate.gate);
          if (answer.outcome === 'waiting') {
            throw new RunStopped(
              `the ${gate.gate} gate of playbook "${ctx.playbook}" needs ${answer.quorum} approvals; the harness gives only one (as ${EVAL_APPROVER}): evaluate with a playbook a single approver can pass`,
            );
          }
        } catch (err) {
          if (!(err instanceof WorkflowUpdateFailedError)) throw err;
          // Refused. A race with the gate closing is harmless; a gate still waiting refused the harness.
          const reason = err.cause?.message ?? err.message;
          const now = await queryStatus(ctx, handle, deadline);
          if (now.pendingGate?.gate === gate.gate && now.pendingGate.since === gate.since) {
            throw new RunStopped(
              `the ${gate.gate} gate refused the harness's approval as ${EVAL_APPROVER}: ${reason} (evaluate with a playbook whose gates anyone may approve, such as research-brief)`,
            );
          }
        }
        continue;
      }
      await Promise.race([result.catch(() => undefined), sleep(200)]);
    }
    const out = await result;
    const final = await queryStatus(ctx, handle, Date.now() + 10_000);
    // The task's totals (children included), without the per-agent breakdown.
    const usage = addUsage(ZERO_USAGE, out.provenance.usage);
    const common = {
      usage,
      models: [...new Set(out.provenance.agents.map((a) => a.model))],
      workflowId,
      steps: final.steps.length,
      ...(out.reportPath ? { reportPath: out.reportPath } : {}),
    };
    if (out.outcome !== 'completed' || !out.report) {
      return { ...common, ok: false, error: `the task ended ${out.outcome} without a report` };
    }
    const sources = new Map<string, Source>();
    for (const step of final.steps) {
      for (const src of step.sources ?? []) sources.set(`${src.title}\u0000${src.url ?? ''}`, src);
    }
    const text = await getArtifact(ctx.artifacts, out.report.id);
    return { ...common, ok: true, answer: { text, sources: [...sources.values()] } };
  } catch (err) {
    if (!done) await bounded(ctx, () => handle.cancel()).catch(() => undefined);
    // A failed task still answers queries: its final figures beat the last ones seen.
    else last = await bounded(ctx, () => handle.query(statusQuery)).catch(() => last);
    const error =
      err instanceof RunStopped
        ? err.message
        : err instanceof WorkflowFailedError
          ? `the task failed: ${describe(err.cause ?? err)}`
          : describe(err);
    return {
      ...empty,
      ...(last ? { usage: addUsage(ZERO_USAGE, last.usage), steps: last.steps.length } : {}),
      ok: false,
      error: `${error}${approved.size ? ` (approved: ${[...approved].join(', ')})` : ''}`,
    };
  }
}
