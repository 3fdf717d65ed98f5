/**
 * What changed in a task, as plain lines: what `npm start` and `npm run baton -- watch` print to logs
 * and pipes (CI) instead of redrawing a frame. Pure: two statuses in, lines out, each sanitized
 * (lib/text.ts).
 */
import type { StepStatus, TaskStatus } from '../contract/messages';
import { displayWidth, line, sanitize } from '../lib/text';
import { formatAudit, formatPendingGate, formatStep } from './format';
import { countSteps, formatCounts, formatUsage, tail, type LiveByWorkflow } from './live-frame';

export interface ChangeOptions {
  /** Child task statuses before and now, by workflow id. */
  prevChildren?: ReadonlyMap<string, TaskStatus>;
  children?: ReadonlyMap<string, TaskStatus>;
  /** Also print the pending gate when it opens or its approvals change (`watch`; `npm start` asks instead). */
  gate?: boolean;
}

/** Child step lines that changed, as `step s2/s1 [researcher] done`, recursively. */
function childChanges(
  prefix: string,
  step: StepStatus,
  prevChildren: ReadonlyMap<string, TaskStatus> | undefined,
  children: ReadonlyMap<string, TaskStatus> | undefined,
): string[] {
  const child = step.childWorkflowId ? children?.get(step.childWorkflowId) : undefined;
  if (!child) return [];
  const before = prevChildren?.get(step.childWorkflowId!);
  const out: string[] = [];
  for (const sub of child.steps) {
    const id = `${prefix}${step.id}/${sub.id}`;
    const was = before?.steps.find((b) => b.id === sub.id);
    if (was?.state !== sub.state) out.push(`  ${formatStep({ ...sub, id })}`);
    out.push(...childChanges(`${prefix}${step.id}/`, sub, prevChildren, children));
  }
  return out;
}

/**
 * What changed from `prev` to `next`, as plain lines: the phase, the plan, each step whose state
 * changed (children's steps as `s2/s1`), progress, new audit entries, tokens and, with
 * `options.gate`, the pending gate. Nothing when nothing changed.
 */
export function changeLines(
  prev: TaskStatus | undefined,
  next: TaskStatus,
  options: ChangeOptions = {},
): string[] {
  const out: string[] = [];
  if (prev?.phase !== next.phase) out.push(`phase: ${next.phase}`);
  if (next.plan && prev?.plan !== next.plan && JSON.stringify(prev?.plan) !== JSON.stringify(next.plan)) {
    out.push(`plan (${next.plan.steps.length} steps): ${line(next.plan.rationale)}`);
    for (const s of next.plan.steps) {
      const deps = s.dependsOn.length ? ` after ${line(s.dependsOn.join(', '))}` : '';
      out.push(
        `  ${line(s.id)} [${line(s.agent)}]${deps}${s.decompose ? ' (decomposes)' : ''}: ${line(s.question)}`,
      );
    }
  }
  let stepsChanged = false;
  for (const step of next.steps) {
    const before = prev?.steps.find((s) => s.id === step.id);
    if (before?.state !== step.state) {
      out.push(`  ${formatStep(step)}`);
      stepsChanged ||= before !== undefined || step.state !== 'pending';
    }
    out.push(...childChanges('', step, options.prevChildren, options.children));
  }
  if (stepsChanged && next.steps.length) {
    const c = countSteps(next.steps);
    const before = prev?.steps.length ? countSteps(prev.steps) : undefined;
    if (!before || before.done + before.failed + before.skipped !== c.done + c.failed + c.skipped)
      out.push(`  progress: ${formatCounts(c)}`);
  }
  if (options.gate) {
    const g = next.pendingGate;
    const was = prev?.pendingGate;
    if (g && (was?.gate !== g.gate || was.stage !== g.stage || was.approvals.length !== g.approvals.length))
      out.push(`  ${formatPendingGate(g)}`);
  }
  for (const entry of next.audit.slice(prev?.audit.length ?? 0)) out.push(`  audit: ${formatAudit(entry)}`);
  if (prev && formatUsage(prev) !== formatUsage(next)) out.push(`  tokens so far: ${formatUsage(next)}`);
  return out.map(sanitize);
}

/** Columns of a plain line of live words: the tail of what the model wrote. */
const LIVE_COLUMNS = 120;

/**
 * The live words that changed since `shown` (what was printed last, by call; updated here), as
 * plain lines: `  words s2 [researcher]: …the tail`, a child's steps as `s2/s1`, the lead's calls
 * as `[lead]`. Only calls of the task and of its running children, none once the task is closed.
 */
export function liveLines(
  shown: Map<string, string>,
  status: TaskStatus,
  children: ReadonlyMap<string, TaskStatus> | undefined,
  live: LiveByWorkflow | undefined,
): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const visit = (s: TaskStatus, prefix: string, depth: number): void => {
    for (const w of live?.get(s.workflowId) ?? []) {
      const key = `${s.workflowId}\n${w.step ?? ''}\n${w.agent}`;
      const words = line(w.words);
      seen.add(key);
      if (!words || shown.get(key) === words) continue;
      shown.set(key, words);
      const who = `${w.step ? `${prefix}${w.step} ` : prefix ? `${prefix.slice(0, -1)} ` : ''}[${w.agent}]`;
      const label = `  words ${line(who)}: `;
      out.push(`${label}${tail(words, Math.max(LIVE_COLUMNS - displayWidth(label), 20))}`);
    }
    if (depth > 4) return;
    for (const step of s.steps) {
      const child = step.childWorkflowId ? children?.get(step.childWorkflowId) : undefined;
      if (child && step.state === 'running') visit(child, `${prefix}${step.id}/`, depth + 1);
    }
  };
  visit(status, '', 1);
  for (const key of [...shown.keys()]) if (!seen.has(key)) shown.delete(key);
  return out.map(sanitize);
}
