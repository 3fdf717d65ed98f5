/**
 * Tasks waiting for a decision, found through the search attributes a task sets while a gate is
 * open (contract/messages.ts): visibility answers without any worker.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { BATON_AWAITING, BATON_PENDING_GATE } from '../contract/messages';

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
 * The visibility query for tasks waiting at a gate: running, with a gate open, and with `approver`,
 * only those that person may still decide (named, or `*` for anyone). docs/approvals.md shows these
 * queries for use with `temporal workflow list --query`.
 */
export function pendingQuery(approver?: string): string {
  const base = `${BATON_PENDING_GATE.name} IS NOT NULL AND ExecutionStatus = 'Running'`;
  return approver === undefined ? base : `${base} AND ${BATON_AWAITING.name} IN (${quote(approver)}, '*')`;
}

/**
 * Running tasks waiting at a gate ({@link pendingQuery}), for `approver` or for anyone, oldest
 * first: the task that has waited longest is the one to look at.
 */
export async function listPending(client: Client, approver?: string): Promise<WorkflowExecutionInfo[]> {
  const tasks: WorkflowExecutionInfo[] = [];
  for await (const execution of client.workflow.list({ query: pendingQuery(approver) }))
    tasks.push(execution);
  return tasks.sort((a, b) => a.startTime.getTime() - b.startTime.getTime());
}

/** Who may decide, for people: `*` is how the workflow says "anyone". */
export const who = (awaiting: readonly string[] | undefined): string =>
  !awaiting?.length ? '(nobody listed)' : awaiting.map((a) => (a === '*' ? 'anyone' : a)).join(', ');
