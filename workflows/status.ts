/**
 * A task's observable state: the {@link TaskStatus} every research workflow keeps (its `status`
 * query answers with it), and the small helpers that change it. Deterministic: `now()` is the time
 * of the current workflow task, never the clock of the machine.
 */
import { addAgentUsageInto } from '../contract/usage';
import type { ConfigSnapshot } from '../config/schema';
import type { AuditEntry, Provenance, TaskStatus } from '../contract/messages';

/** Workflow time as ISO text (inside a workflow, `Date` is the time of the current workflow task). */
export const now = (): string => new Date().toISOString();

type Usage = TaskStatus['usage'];

/** The status a workflow starts with, before its config is loaded. */
export function newStatus(workflowId: string, question: string, playbook: string, depth: number): TaskStatus {
  return {
    workflowId,
    question,
    playbook,
    depth,
    phase: 'loading-config',
    planAttempts: 0,
    revisions: { plan: 0, report: 0 },
    steps: [],
    usage: { inputTokens: 0, outputTokens: 0, byAgent: {} },
    audit: [],
  };
}

/** Adds a child workflow's usage, agent by agent. */
export function mergeUsage(total: Usage, other: Usage): void {
  for (const [agentId, usage] of Object.entries(other.byAgent)) addAgentUsageInto(total, agentId, usage);
}

/** A cancelled task: steps in flight were cancelled with it, and nobody is asked to decide any more. */
export function markCancelled(status: TaskStatus): void {
  for (const step of status.steps) {
    if (step.state === 'running') Object.assign(step, { state: 'failed', error: 'cancelled with the task' });
  }
  status.error = 'the task was cancelled';
  status.pendingGate = undefined;
}

/** What Baton refused a model in this run (plans, tool calls), for a child to hand to its parent. */
export const refusalsIn = (status: TaskStatus): AuditEntry[] =>
  status.audit.filter((e) => e.event === 'plan-refused' || e.event === 'tool-call-refused');

/** What the provenance of a task's report says beyond its status: who ran it, when, who approved. */
export interface ProvenanceContext {
  runId: string;
  startedAt: string;
  approvals: Provenance['approvals'];
  /** The runs before this one, when the task continued as a new run (workflows/continue.ts). */
  earlierRuns?: string[];
}

/** The provenance of the task's report as of now: config, agents used, usage, approvals, audit trail. */
export function provenanceOf(
  status: TaskStatus,
  snapshot: ConfigSnapshot,
  context: ProvenanceContext,
): Provenance {
  return {
    generator: 'baton',
    aiGenerated: true,
    workflowId: status.workflowId,
    runId: context.runId,
    question: status.question,
    playbook: status.playbook,
    configDigest: snapshot.digest,
    agents: [snapshot.lead, ...Object.values(snapshot.specialists)]
      .filter((a) => status.usage.byAgent[a.id])
      .map((a) => ({ id: a.id, model: a.model, role: a.role })),
    usage: status.usage,
    approvals: context.approvals,
    audit: status.audit,
    ...(status.budget ? { budget: status.budget } : {}),
    startedAt: context.startedAt,
    finishedAt: now(),
    ...(context.earlierRuns?.length ? { earlierRuns: context.earlierRuns } : {}),
    ...(status.rounds?.length ? { rounds: status.rounds } : {}),
  };
}
