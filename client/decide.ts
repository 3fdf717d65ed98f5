/**
 * Deciding at a task's pending gate through the workflow's `decide` Update. The workflow is the
 * judge of every decision (who may decide, whether a comment is needed, which steps exist:
 * workflows/gates.ts), so nothing here checks more; a refusal comes back in the workflow's words.
 */
import {
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import type { DecisionStatement } from '../contract/decision';
import { decide, type DecideRequest, type DecideResult } from '../contract/messages';
import { askWorker, queryStatus } from './status';

/** The outcome of a decision: the workflow's answer, or its reason for refusing. */
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
 * throws `WorkflowNotFoundError`.
 */
export async function decideTask(
  client: Client,
  workflowId: string,
  request: DecideRequest,
  timeoutMs?: number,
): Promise<DecisionOutcome> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    // Temporal keeps an Update it has admitted: if the worker is only late, the decision may still land.
    return await askWorker(client, workflowId, () => sendDecision(handle, request), {
      timeoutMs,
      afterwards: ` The decision may still reach the task when a worker picks it up; check with: npm run baton -- show ${workflowId}`,
    });
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

/** How an accepted decision reads, e.g. `accepted: waiting (plan gate, 1 of 2 approvals)`. */
export function formatDecideResult(r: DecideResult): string {
  const count =
    r.outcome === 'approved' || r.outcome === 'waiting' ? `, ${r.approvals} of ${r.quorum} approvals` : '';
  return `accepted: ${r.outcome} (${r.gate} gate${count})`;
}

/** An outcome as one line: {@link formatDecideResult}, or `refused: <the workflow's reason>`. */
export const formatDecision = (outcome: DecisionOutcome): string =>
  outcome.accepted ? formatDecideResult(outcome.result) : `refused: ${outcome.reason}`;

/**
 * The statement to sign for `request` at the gate opening the task has pending now (contract/decision.ts):
 * asks the task (the `status` query) for the gate's instance and subject, and dates it now. What
 * `baton approve --key` signs with a key, and what the inbox has a passkey sign.
 * @throws Error when no gate is pending, another gate is, or the task cannot say which opening it
 * is (a worker older than signed decisions)
 */
export async function statementFor(
  client: Client,
  workflowId: string,
  request: DecideRequest,
  timeoutMs?: number,
): Promise<DecisionStatement> {
  const status = await queryStatus(client, workflowId, timeoutMs);
  const open = status.pendingGate;
  if (!open)
    throw new Error(`task ${workflowId} has no gate pending (phase: ${status.phase}); nothing to sign`);
  if (request.gate && request.gate !== open.gate)
    throw new Error(`the ${request.gate} gate is not pending; the pending gate is ${open.gate}`);
  if (open.instance === undefined || open.subject === undefined) {
    throw new Error(
      `task ${workflowId} does not say which opening of its ${open.gate} gate is pending, or what it decides on: its worker predates signed decisions, so it cannot check a signature`,
    );
  }
  return {
    ...request,
    // Signed as the workflow will read it: its payload schema trims `by`.
    by: request.by.trim(),
    workflowId,
    gate: open.gate,
    instance: open.instance,
    subject: open.subject,
    at: new Date().toISOString(),
  };
}
