/**
 * Playbooks (`playbooks/*.yaml`): which specialists a task may use, its limits and budgets, its
 * approval gates, and optionally a plan fixed in review; and the rules that check a playbook
 * against `agents.yaml` and `approvers.yaml`.
 */
import type { Duration as TemporalDuration } from '@temporalio/common';
import { z } from 'zod';
import type { AgentsFile } from './agents';
import { resolveApprovers, type ApproversFile } from './approvers';
import { DurationSchema, durationMs, IdSchema, type Finding } from './common';
import { PlanSchema, planFindings } from './plan';

/**
 * Who may decide at a gate: a person's id from approvers.yaml, `group:<id>` for a group, or `"*"`
 * for anyone (demos only: it makes the approver list meaningless).
 */
const ApproverRefSchema = z
  .string()
  .regex(/^(\*|group:[a-z][a-z0-9-]{0,39}|[^\s*:]{1,200})$/, 'must be a person id, "group:<id>" or "*"');

/** The second approver list a gate turns to when its first deadline passes unanswered. */
export const EscalationSchema = z
  .object({
    approvers: z.array(ApproverRefSchema).min(1),
    quorum: z.number().int().min(1).max(20).default(1),
    deadline: DurationSchema,
    onDeadline: z.enum(['reject', 'auto-approve']).default('reject'),
  })
  .strict();

export const GateSchema = z
  .object({
    /** Whether the task waits at this gate for a person. */
    required: z.boolean(),
    approvers: z.array(ApproverRefSchema).min(1),
    /** Distinct approvals needed (N of M). A rejection by any approver ends the gate at once. */
    quorum: z.number().int().min(1).max(20).default(1),
    /** How long the gate waits, in durable workflow time; unset waits for ever. */
    deadline: DurationSchema.optional(),
    /** What happens when the deadline passes unanswered. */
    onDeadline: z.enum(['reject', 'auto-approve', 'escalate']).default('reject'),
    escalation: EscalationSchema.optional(),
    /** Points after the gate opens at which a reminder is recorded (and shown in status). */
    reminders: z.array(DurationSchema).default([]),
  })
  .strict()
  .superRefine((gate, ctx) => {
    const issue = (path: (string | number)[], message: string): void =>
      ctx.addIssue({ code: 'custom', path, message });
    if (gate.onDeadline !== 'reject' && !gate.deadline)
      issue(['onDeadline'], `"${gate.onDeadline}" needs a deadline`);
    if (gate.onDeadline === 'escalate' && !gate.escalation)
      issue(['escalation'], 'onDeadline "escalate" needs an escalation');
    if (gate.escalation && gate.onDeadline !== 'escalate')
      issue(['escalation'], 'only used when onDeadline is "escalate"');
    // zod runs this refinement even after a duration failed its regex: compare well-formed ones only.
    const ms = (d: TemporalDuration | undefined): number | undefined =>
      d !== undefined && DurationSchema.safeParse(d).success ? durationMs(d) : undefined;
    const deadline = ms(gate.deadline) ?? Infinity;
    gate.reminders.forEach((r, i) => {
      const at = ms(r);
      if (at !== undefined && at >= deadline)
        issue(['reminders', i], `must come before the deadline (${gate.deadline})`);
    });
  });
export type GateConfig = z.infer<typeof GateSchema>;

const NO_GATE: GateConfig = {
  required: false,
  approvers: ['*'],
  quorum: 1,
  onDeadline: 'reject',
  reminders: [],
};

export const PlaybookLimitsSchema = z
  .object({
    maxSteps: z.number().int().min(1).max(1000),
    /** 0: no step may decompose; 1: a step may become a child task that plans once more; and so on. */
    maxDepth: z.number().int().min(0).max(3),
    maxParallel: z.number().int().min(1).max(256),
    /** How many times the lead may be asked for a plan before an invalid plan fails the task. */
    maxPlanAttempts: z.number().int().min(1).max(5).default(3),
    /** How many change requests a gate accepts before it can only be approved or rejected. */
    maxRevisions: z.number().int().min(0).max(10).default(2),
    /**
     * Steps across the task's whole tree: the top plan's, and every decomposed step's child plans'
     * (each decomposed step gets an equal share of what the plan leaves). Default: maxSteps times
     * (1 + maxDepth), so decomposition adds steps linearly, not as maxSteps to the power maxDepth.
     */
    maxTotalSteps: z.number().int().min(1).max(10_000).optional(),
  })
  .strict()
  .transform((limits) => ({
    ...limits,
    maxTotalSteps: limits.maxTotalSteps ?? limits.maxSteps * (1 + limits.maxDepth),
  }));
export type PlaybookLimits = z.infer<typeof PlaybookLimitsSchema>;

export const PlaybookSchema = z
  .object({
    id: IdSchema,
    description: z.string().min(1),
    /** Specialists the plan may use. The lead is implied and may not be listed. */
    agents: z.array(IdSchema).min(1),
    limits: PlaybookLimitsSchema,
    gates: z
      .object({ plan: GateSchema.default(NO_GATE), report: GateSchema.default(NO_GATE) })
      .strict()
      .default({ plan: NO_GATE, report: NO_GATE }),
    /** A plan fixed in review: the lead is not asked to plan at all. */
    fixedPlan: PlanSchema.optional(),
    /** What happens when a step still fails after its agent's retries. */
    onStepFailure: z
      .object({
        /** Run the whole step (activity or child task) again this many times. */
        retries: z.number().int().min(0).max(5).default(0),
        /** Then fail the task, or go on without the step and say so in the report. */
        then: z.enum(['fail', 'skip']).default('fail'),
      })
      .strict()
      .default({ retries: 0, then: 'fail' }),
    /**
     * `signed`: every decision at this playbook's gates must be signed with a key config lists for
     * the person it names, for this task, gate opening and plan or draft (docs/approvals.md, "Signed
     * decisions"). `unsigned` (the default, as before signing): names are taken as given, and the
     * report and audit trail say so.
     */
    decisions: z.enum(['signed', 'unsigned']).default('unsigned'),
    /** Whether a gate may approve itself when its deadline passes (`auto-approve`). Off by default. */
    allowAutoApprove: z.boolean().default(false),
    /**
     * Token budgets (input, output and cache tokens together). Per task: the workflow stops
     * scheduling new steps when the next one would exceed it, and synthesizes what it has. Per
     * step: caps each specialist call's output tokens, and is a decomposed step's task budget.
     */
    budget: z
      .object({
        maxTokensPerTask: z.number().int().min(1000).max(1e9).optional(),
        maxTokensPerStep: z.number().int().min(100).max(1e8).optional(),
      })
      .strict()
      .optional(),
    /**
     * Research rounds (docs/architecture.md, "How a task runs"): after the planned steps, the lead
     * reviews the findings and may add steps (a plan delta), at most `max` times (0: plan once).
     * `approval`: whether each delta waits at the plan gate; default `required` when the plan gate
     * is. Absent from snapshots taken before rounds: those plan once.
     */
    rounds: z
      .object({
        max: z.number().int().min(0).max(5).default(0),
        approval: z.enum(['required', 'none']).optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((playbook, ctx) => {
    if (playbook.rounds?.approval === 'required' && !playbook.gates.plan.required)
      ctx.addIssue({
        code: 'custom',
        path: ['rounds', 'approval'],
        message: 'required needs a plan gate (gates.plan.required: true), where each delta is approved',
      });
    if ((playbook.rounds?.max ?? 0) > 0 && playbook.fixedPlan)
      ctx.addIssue({
        code: 'custom',
        path: ['rounds', 'max'],
        message:
          'a playbook with a fixed plan has no lead planning to add rounds to; use max 0 or drop fixedPlan',
      });
    if (playbook.allowAutoApprove) return;
    for (const gate of ['plan', 'report'] as const) {
      const g = playbook.gates[gate];
      if (g.onDeadline === 'auto-approve') {
        ctx.addIssue({
          code: 'custom',
          path: ['gates', gate, 'onDeadline'],
          message: 'auto-approve needs allowAutoApprove: true on the playbook',
        });
      }
      if (g.escalation?.onDeadline === 'auto-approve') {
        ctx.addIssue({
          code: 'custom',
          path: ['gates', gate, 'escalation', 'onDeadline'],
          message: 'auto-approve needs allowAutoApprove: true on the playbook',
        });
      }
    }
  });
export type Playbook = z.infer<typeof PlaybookSchema>;

/** A playbook's research rounds: how many deltas the lead may add, and whether each needs approval. */
export function roundsOf(playbook: Playbook): { max: number; approval: 'required' | 'none' } {
  return {
    max: playbook.rounds?.max ?? 0,
    approval: playbook.rounds?.approval ?? (playbook.gates.plan.required ? 'required' : 'none'),
  };
}

/** A gate as a running task sees it: approver references resolved to people. */
export interface ResolvedGate extends Omit<GateConfig, 'approvers' | 'escalation'> {
  approvers: string[];
  escalation?: Omit<NonNullable<GateConfig['escalation']>, 'approvers'> & { approvers: string[] };
}

/**
 * Gate approver references exist, and a quorum can be met by the people named — by distinct people:
 * a quorum over 1 needs `decisions: signed`, since an unsigned decision's name is taken as given and
 * one person could send several, and `'*'` (anyone) takes any name as given the same way.
 */
export function checkGatesAgainstApprovers(playbook: Playbook, file: ApproversFile): Finding[] {
  const problems: Finding[] = [];
  const check = (at: string[], refs: readonly string[], quorum: number): void => {
    const where = at.join('.');
    refs.forEach((ref, i) => {
      if (ref === '*') return;
      const add = (message: string): void => {
        problems.push({ at: [...at, 'approvers', i], message });
      };
      if (ref.startsWith('group:')) {
        if (!file.groups.some((g) => g.id === ref.slice(6)))
          add(`${where}.approvers: group "${ref.slice(6)}" is not declared in approvers.yaml`);
      } else if (!file.people.some((p) => p.id === ref)) {
        add(`${where}.approvers: "${ref}" is not declared in approvers.yaml`);
      }
    });
    const resolved = resolveApprovers(refs, file);
    const claimed = (by: string): string =>
      `${where}.quorum: ${quorum} approvals ${by} could all come from one person claiming several names`;
    if (quorum > 1 && playbook.decisions === 'unsigned') {
      problems.push({
        at: [...at, 'quorum'],
        message: `${claimed('under decisions: unsigned')}; set decisions: signed (approvers sign with keys listed in approvers.yaml), or use quorum 1`,
      });
    } else if (resolved.includes('*') && quorum > 1) {
      problems.push({
        at: [...at, 'quorum'],
        message: `${claimed("from '*' (anyone)")}; name the approvers, or use quorum 1`,
      });
    } else if (!resolved.includes('*') && resolved.length < quorum) {
      problems.push({
        at: [...at, 'quorum'],
        message: `${where}.quorum: ${quorum} approvals needed but only ${resolved.length} approver(s) named`,
      });
    }
  };
  for (const gate of ['plan', 'report'] as const) {
    const g = playbook.gates[gate];
    if (!g.required) continue;
    check(['gates', gate], g.approvers, g.quorum);
    if (g.escalation) check(['gates', gate, 'escalation'], g.escalation.approvers, g.escalation.quorum);
  }
  return problems;
}

/** Cross-file rules: the playbook's agents exist and are not the lead; a fixed plan obeys the limits. */
export function checkPlaybookAgainstAgents(playbook: Playbook, agents: AgentsFile): Finding[] {
  const problems: Finding[] = [];
  const declared = new Set(agents.agents.map((a) => a.id));
  playbook.agents.forEach((id, i) => {
    const at = ['agents', i];
    if (!declared.has(id)) problems.push({ at, message: `agents: "${id}" is not declared in agents.yaml` });
    if (id === agents.lead)
      problems.push({ at, message: `agents: "${id}" is the lead agent and cannot be a step's specialist` });
  });
  problems.push(...checkFixedPlan(playbook));
  return problems;
}

/** A fixed plan obeys its playbook's limits and names only its agents. */
export function checkFixedPlan(playbook: Playbook): Finding[] {
  if (!playbook.fixedPlan) return [];
  const limits = { ...playbook.limits, allowedAgents: playbook.agents, depth: 0 };
  return planFindings(playbook.fixedPlan, limits).map((f) => ({
    at: ['fixedPlan', ...f.at],
    message: `fixedPlan: ${f.message}`,
  }));
}
