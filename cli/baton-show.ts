/**
 * `npm run baton -- show [--full] [--diff] <workflow id>`: a task's question, plan (with its child
 * tasks' plans), pending gate, the draft at a glance (all of it with `--full`), usage and audit
 * trail; with `--diff`, what changed in the plan and the draft since the version shown before.
 */
import type { Client } from '@temporalio/client';
import { createTwoFilesPatch } from 'diff';
import {
  childrenBelow,
  dependencyOrder,
  planDelta,
  planUnchanged,
  previousOf,
  queryTaskTree,
  stepsOf,
  versionsOf,
  type TaskTree,
} from '../client';
import { getArtifact } from '../activities/artifacts';
import { readDraft, readPublished, shownLocation } from '../activities/report';
import type { Stores } from '../activities/store';
import type { Plan } from '../config/schema';
import type { TaskStatus } from '../contract/messages';
import { line as oneLine } from '../lib/text';
import { formatAudit, formatPendingGate, formatRound, formatStep, formatUsageExtras } from './format';
import { draftLines, draftSummaryLines } from './gate-prompt';

/** What `show` prints beyond the task: the whole report (`--full`), what changed (`--diff`). */
export interface ShowOptions {
  full?: boolean;
  diff?: boolean;
  /** Where `$PAGER` is read for the hint to page the draft. */
  env?: NodeJS.ProcessEnv;
}

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
      ...(step.round ? [`added in research round ${step.round}`] : []),
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
  options: ShowOptions = {},
): Promise<number> {
  const { status: s, children } = await queryTaskTree(client, workflowId, workerTimeoutMs);
  out(`task ${s.workflowId}`);
  out(`question: ${oneLine(s.question)}`);
  out(`playbook: ${s.playbook}${s.depth ? ` (child task, depth ${s.depth})` : ''}`);
  out(`phase: ${s.phase}`);
  for (const line of planTree(s, children)) out(line);
  for (const round of s.rounds ?? []) out(formatRound(round));
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
  // At the report gate, the draft to decide on, read through the store (or why it cannot be): at a
  // glance, or all of it. With --full, a published report is printed whole too.
  if (s.pendingGate?.gate === 'report' && s.report) {
    const draft = await readDraft(stores, s.report).then(
      (text) =>
        options.full
          ? draftLines(text)
          : draftSummaryLines(s.workflowId, text, s.revisions.report > 0, (options.env ?? process.env).PAGER),
      (err: Error) => [`draft: ${err.message}`],
    );
    for (const line of draft) out(line);
  } else if (options.full && s.report?.path) {
    const report = await readPublished(stores.reports, s.report.path).then(
      (text) => ['', '----- report -----', ...text.split('\n'), '----- end of report -----', ''],
      (err: Error) => [`report: ${err.message}`],
    );
    for (const line of report) out(line);
  }
  if (options.diff) for (const line of await changeLines(client, stores, s)) out(line);
  if (s.error) out(`error: ${s.error}`);
  out(
    s.audit.length ? `audit (${s.audit.length} entr${s.audit.length === 1 ? 'y' : 'ies'}):` : 'audit: empty',
  );
  for (const entry of s.audit) out(`  ${formatAudit(entry)}`);
  return 0;
}

/**
 * What changed since the version shown before, read from the task's history (client/drafts.ts):
 * the plan's delta and a unified diff of the draft (its body, without the label), each against the
 * version before the current one, which is what a reviewer who asked for changes last saw.
 */
export async function changeLines(client: Client, stores: Stores, s: TaskStatus): Promise<string[]> {
  const { drafts, plans } = await versionsOf(client, s.workflowId);
  const lines: string[] = [];
  const plan = s.plan ?? plans.at(-1);
  const same = (a: Plan, b: Plan) => JSON.stringify(a) === JSON.stringify(b);
  const previousPlan = plan && previousOf(plans, plan, same);
  if (!plan || !previousPlan) {
    lines.push('plan changes: none (the plan was not revised)');
  } else {
    lines.push(...planDeltaLines(previousPlan, plan));
  }
  const draft = s.report?.artifact ?? drafts.at(-1);
  const previousDraft = draft && previousOf(drafts, draft, (a, b) => a.id === b.id);
  if (!draft || !previousDraft) {
    lines.push('draft changes: none (no earlier draft)');
    return lines;
  }
  // Both end in a newline, so a last line that changed reads as any other.
  const [before, after] = await Promise.all(
    [previousDraft, draft].map(
      async (ref) => `${(await getArtifact(stores.artifacts, ref.id)).replace(/\n?$/, '\n')}`,
    ),
  );
  const patch = createTwoFilesPatch(
    'previous draft',
    'this draft',
    before!,
    after!,
    previousDraft.id,
    draft.id,
    {
      context: 3,
    },
  );
  lines.push(`draft changes (${previousDraft.id.slice(0, 19)}… → ${draft.id.slice(0, 19)}…):`);
  // The patch's own separator line adds nothing here.
  lines.push(...patch.split('\n').filter((l) => !/^=+$/.test(l) && l !== ''));
  return lines;
}

/** A revised plan against the one before it, one line per change. */
function planDeltaLines(before: Plan, after: Plan): string[] {
  const delta = planDelta(before, after);
  if (planUnchanged(delta)) return ['plan changes: none (the revised plan is the same)'];
  return [
    'plan changes (against the plan shown before):',
    ...(delta.rationale
      ? [`  ~ rationale: ${oneLine(delta.rationale.before)} → ${oneLine(delta.rationale.after)}`]
      : []),
    ...delta.added.map((st) => `  + ${st.id} [${st.agent}] ${oneLine(st.question)}`),
    ...delta.removed.map((st) => `  - ${st.id} [${st.agent}] ${oneLine(st.question)}`),
    ...delta.changed.flatMap((c) =>
      c.fields.map((f) => `  ~ ${c.id} ${f.field}: ${oneLine(f.before)} → ${oneLine(f.after)}`),
    ),
  ];
}
