/**
 * `npm run baton -- show <workflow id>`: a task's question, plan (with its child tasks' plans),
 * pending gate, usage and audit trail.
 */
import type { Client } from '@temporalio/client';
import { childrenBelow, dependencyOrder, queryTaskTree, stepsOf, type TaskTree } from '../client';
import { readDraft, shownLocation } from '../activities/report';
import type { Stores } from '../activities/store';
import type { TaskStatus } from '../contract/messages';
import { line as oneLine } from '../lib/text';
import { formatAudit, formatPendingGate, formatStep, formatUsageExtras } from './format';
import { draftLines } from './gate-prompt';

/**
 * The plan as a tree: one branch per step, its details as leaves; a decomposed step's child task's
 * plan (its own status query) nested under it, as deep as it goes.
 */
export function planTree(
  s: TaskStatus,
  children: TaskTree['children'],
  indent = '',
  name = 'plan',
): string[] {
  const steps = stepsOf(s);
  if (!s.plan && !steps.length) return [`${indent}${name}: none yet`];
  const lines = [
    `${indent}${name} (${steps.length} step${steps.length === 1 ? '' : 's'})${s.plan ? `: ${oneLine(s.plan.rationale)}` : ''}`,
  ];
  const ordered = dependencyOrder(steps);
  ordered.forEach((step, i) => {
    const last = i === ordered.length - 1;
    lines.push(`${indent}${last ? '└─' : '├─'} ${formatStep(step)}`);
    const childId = step.childWorkflowId;
    const child = childId ? children.get(childId) : undefined;
    const leaves: string[] = [
      ...(step.dependsOn.length ? [`after ${step.dependsOn.join(', ')}`] : []),
      ...(step.decompose ? ['decomposes: planned again one level deeper, as a child task'] : []),
      ...(step.revision ? [`re-run ${step.revision} time(s) at a reviewer's request`] : []),
      `question: ${oneLine(step.question)}`,
      ...(child && !('phase' in child) ? [`child task did not answer: ${oneLine(child.error)}`] : []),
    ];
    const below = `${indent}${last ? '   ' : '│  '}`;
    leaves.forEach((leaf, j) => {
      const lastLeaf = j === leaves.length - 1;
      lines.push(`${below}${lastLeaf ? '└─' : '├─'} ${leaf}`);
    });
    // A failed child's status has an error too: a status is told from a query error by its phase.
    if (child && 'phase' in child)
      lines.push(
        ...planTree(child, childrenBelow(children, childId!), `${below}   `, `child plan of ${step.id}`),
      );
  });
  return lines;
}

/** Prints the task as `show` shows it; 0. */
export async function show(
  client: Client,
  workflowId: string,
  workerTimeoutMs: number | undefined,
  out: (line: string) => void,
  stores: Stores,
): Promise<number> {
  const { status: s, children } = await queryTaskTree(client, workflowId, workerTimeoutMs);
  out(`task ${s.workflowId}`);
  out(`question: ${oneLine(s.question)}`);
  out(`playbook: ${s.playbook}${s.depth ? ` (child task, depth ${s.depth})` : ''}`);
  out(`phase: ${s.phase}`);
  for (const line of planTree(s, children)) out(line);
  out(s.pendingGate ? formatPendingGate(s.pendingGate) : 'no gate is pending');
  const byAgent = Object.entries(s.usage.byAgent)
    .map(([agent, u]) => `${agent} ${u.inputTokens} in / ${u.outputTokens} out`)
    .join(', ');
  out(`tokens: ${s.usage.inputTokens} in, ${s.usage.outputTokens} out${byAgent ? ` (${byAgent})` : ''}`);
  for (const line of formatUsageExtras(s.usage)) out(line);
  if (s.report) {
    const { path, draftPath, artifact } = s.report;
    out(
      `report: ${path ? shownLocation(path) : `draft ${draftPath ? shownLocation(draftPath) : artifact.id}`}`,
    );
  }
  // At the report gate, the draft to decide on, read through the store (or why it cannot be).
  if (s.pendingGate?.gate === 'report' && s.report) {
    const draft = await readDraft(stores, s.report).then(draftLines, (err: Error) => [
      `draft: ${err.message}`,
    ]);
    for (const line of draft) out(line);
  }
  if (s.error) out(`error: ${s.error}`);
  out(
    s.audit.length ? `audit (${s.audit.length} entr${s.audit.length === 1 ? 'y' : 'ies'}):` : 'audit: empty',
  );
  for (const entry of s.audit) out(`  ${formatAudit(entry)}`);
  return 0;
}
