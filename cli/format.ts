/**
 * How the CLIs print a task's status and audit trail. Every line these return is sanitized
 * (lib/text.ts, contract/text.ts): names, comments, reasons and errors come from signals and models.
 */
import { formatUsd } from '../contract/usage';
import type { AuditEntry, TaskStatus } from '../contract/messages';
import { sanitize } from '../lib/text';

/** One audit entry as a line, e.g. `2026-11-24T10:00:00Z plan: approve by alice (update) accepted`. */
export function formatAudit(e: AuditEntry): string {
  const gate = e.gate ?? '-';
  if (e.event !== 'decision')
    return sanitize(`${e.at} ${gate}: ${e.event}${e.reason ? ` (${e.reason})` : ''}`);
  const signing = e.signed === undefined ? '' : e.signed ? ' (signed)' : ' (unsigned)';
  const verdict = e.accepted ? `accepted${signing}` : `REFUSED: ${e.reason}`;
  const comment = e.comment ? ` "${e.comment}"` : '';
  return sanitize(`${e.at} ${gate}: ${e.decision} by ${e.by} via ${e.via}${comment}: ${verdict}`);
}

/** One step as a line. */
export function formatStep(s: TaskStatus['steps'][number]): string {
  const where = s.childWorkflowId ? ` (child ${s.childWorkflowId})` : '';
  const tail =
    s.state === 'failed'
      ? `: ${s.error}`
      : s.state === 'done' && s.summary
        ? `: ${s.summary.slice(0, 120)}`
        : '';
  return sanitize(`step ${s.id} [${s.agent}] ${s.state}${where}${tail}`);
}

/** A research round as a line: `round 2 approved by alice: adds r2-1, r2-2 — <the lead's reason>`. */
export function formatRound(r: NonNullable<TaskStatus['rounds']>[number]): string {
  const by = r.by?.length ? ` by ${r.by.join(', ')}` : '';
  const steps = r.steps.length
    ? `: ${r.decision === 'approved' || r.decision === 'no-approval-needed' ? 'adds' : 'steps'} ${r.steps.join(', ')}`
    : '';
  const why = [r.reason, r.problems].filter(Boolean).join(' — ');
  return sanitize(`round ${r.n} ${r.decision}${by}${steps}${why ? ` — ${why}` : ''}`);
}

/** The pending gate as a line: who may decide, approvals so far, deadline. */
export function formatPendingGate(g: NonNullable<TaskStatus['pendingGate']>): string {
  const by = (a: (typeof g.approvals)[number]): string =>
    a.signed === false ? `${a.by} (unsigned)` : a.signed ? `${a.by} (signed)` : a.by;
  const approvals = g.approvals.length ? `; approved by ${g.approvals.map(by).join(', ')}` : '';
  const deadline = g.deadline ? `; deadline ${g.deadline}` : '';
  const call = g.call
    ? `; call ${g.call.server} · ${g.call.tool} ${g.call.arguments} (step ${g.call.step})`
    : '';
  return sanitize(
    `waiting at the ${g.gate} gate (${g.stage}) for ${g.quorum} approval(s) from ${g.approvers.join(', ')}${approvals}${deadline}${call}`,
  );
}

/**
 * The usage lines beyond the token totals, for people: prompt-cache reads and writes, and the
 * estimated cost with its per-agent breakdown. Empty for usage recorded before Baton had them.
 */
export function formatUsageExtras(usage: TaskStatus['usage']): string[] {
  const lines: string[] = [];
  if (usage.cacheReadInputTokens !== undefined || usage.cacheCreationInputTokens !== undefined) {
    lines.push(
      `prompt cache: ${usage.cacheReadInputTokens ?? 0} input tokens read, ${usage.cacheCreationInputTokens ?? 0} written`,
    );
  }
  if (usage.costUsd !== undefined) {
    const usd = (c: number | null | undefined): string =>
      c === null || c === undefined ? 'unknown' : formatUsd(c);
    const byAgent = Object.entries(usage.byAgent)
      .map(([agent, u]) => `${agent} ${usd(u.costUsd)}`)
      .join(', ');
    lines.push(
      `estimated cost: ${usage.costUsd === null ? 'unknown (a model used has no price in config)' : `${formatUsd(usage.costUsd)} (USD, from the price table in config)`}${byAgent ? `; ${byAgent}` : ''}`,
    );
  }
  return lines;
}
