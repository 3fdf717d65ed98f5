/**
 * The zod schemas for everything Baton reads from `config/` and for the plans the lead agent writes.
 *
 * Pure code only: this module is imported by workflow code (bundled into the deterministic sandbox),
 * by activities and by the CLI. Types are inferred from the schemas, never written twice.
 */
import type { Duration as TemporalDuration } from '@temporalio/common';
import { z } from 'zod';

/** Names of the tools an agent may be given. The registry itself lives in `activities/tools.ts`. */
export const TOOL_NAMES = ['web_search'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/** A duration as Temporal accepts it: a number and a unit, e.g. `500ms`, `30s`, `10m`, `2h`, `3d`. */
export const DurationSchema = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)$/, 'must be a whole number followed by ms, s, m, h or d, e.g. "30s" or "10m"')
  // The regex admits only strings Temporal's Duration type accepts; the cast tells TypeScript so.
  .transform((s) => s as TemporalDuration);

const idPattern = /^[a-z][a-z0-9-]{0,39}$/;
const AgentIdSchema = z
  .string()
  .regex(idPattern, 'must be lower-case letters, digits and dashes, starting with a letter (at most 40)');

export const RetryPolicySchema = z
  .object({
    initialInterval: DurationSchema.default('2s'),
    backoffCoefficient: z.number().min(1).max(10).default(2),
    maximumInterval: DurationSchema.default('1m'),
    maximumAttempts: z.number().int().min(1).max(100).default(5),
    /** Failure types never retried, e.g. `ModelOutputInvalid` to fail fast on malformed answers. */
    nonRetryableErrorTypes: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type RetryPolicyConfig = z.infer<typeof RetryPolicySchema>;

export const AgentSchema = z
  .object({
    id: AgentIdSchema,
    role: z.string().min(1).max(500),
    model: z.string().min(1),
    systemPrompt: z.string().min(1).max(20_000),
    maxTokens: z.number().int().min(64).max(64_000),
    /**
     * For the lead: how to size a plan to the question (effort scaling), given to it with every
     * planning request. The playbook's limits still bound whatever it plans.
     */
    effortRule: z.string().min(1).max(4000).optional(),
    tools: z.array(z.enum(TOOL_NAMES)).default([]),
    timeouts: z
      .object({
        /** Longest a single model call may take, retries not included. */
        startToClose: DurationSchema.default('10m'),
        /** A streaming call that sends nothing for this long is presumed dead and retried. */
        heartbeat: DurationSchema.default('30s'),
      })
      .strict()
      .default({ startToClose: '10m', heartbeat: '30s' }),
    retry: RetryPolicySchema.default({
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '1m',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [],
    }),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentSchema>;

/** A price in USD per million tokens: finite, not negative, and below an absurd bound that catches typos. */
const UsdPerMTokSchema = z
  .number({
    error: (issue) =>
      issue.input === undefined
        ? 'is required (US dollars per million tokens)'
        : 'must be a number of US dollars per million tokens',
  })
  .min(0, 'must not be negative')
  .max(10_000, 'is implausibly high for USD per million tokens (at most 10000)');

/**
 * What one model costs, in USD per million tokens, as Anthropic lists it: base input, output, 5-minute
 * cache writes and cache reads (hits). All four are required: a reviewed table says each one.
 */
export const ModelPriceSchema = z
  .object({
    /** Input tokens that were neither read from nor written to the prompt cache. */
    input: UsdPerMTokSchema,
    output: UsdPerMTokSchema,
    /** Input tokens written to the prompt cache (5-minute entries, which is what Baton asks for). */
    cacheWrite: UsdPerMTokSchema,
    /** Input tokens read from the prompt cache. */
    cacheRead: UsdPerMTokSchema,
  })
  .strict()
  .superRefine((price, ctx) => {
    // Anthropic prices cache reads below, and cache writes above, base input: a table that says
    // otherwise has most likely swapped two columns.
    if (price.cacheRead > price.input)
      ctx.addIssue({
        code: 'custom',
        path: ['cacheRead'],
        message: `must not exceed input (${price.input}): cache reads are cheaper than base input; are cacheRead and cacheWrite swapped?`,
      });
    if (price.cacheWrite < price.input)
      ctx.addIssue({
        code: 'custom',
        path: ['cacheWrite'],
        message: `must not be below input (${price.input}): cache writes cost more than base input; are cacheRead and cacheWrite swapped?`,
      });
  });
export type ModelPrice = z.infer<typeof ModelPriceSchema>;

/** Prices by Anthropic model id. A model missing here has an unknown cost (shown as such, never as 0). */
export const PriceTableSchema = z.record(z.string(), ModelPriceSchema).superRefine((table, ctx) => {
  for (const model of Object.keys(table)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:@/[\]-]{0,199}$/.test(model))
      ctx.addIssue({
        code: 'custom',
        path: [model],
        message: 'must be a model id such as "claude-sonnet-5-5"',
      });
  }
});
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** An agent as a task's config snapshot holds it: its config, and the price of its model when config lists one. */
export type SnapshotAgent = AgentConfig & {
  /** From `prices` in agents.yaml at the task's start. Absent: no price listed (or a snapshot older than prices). */
  price?: ModelPrice;
};

export const AgentsFileSchema = z
  .object({
    /** Id of the agent that plans and synthesizes. */
    lead: AgentIdSchema,
    agents: z.array(AgentSchema).min(2),
    /**
     * USD per million tokens by model id, for cost estimates. Optional: without it (or without a
     * model in it) costs are shown as unknown. Changing it changes the config digest.
     */
    prices: PriceTableSchema.optional(),
  })
  .strict()
  .superRefine(
    (file, ctx) => {
      const seen = new Set<string>();
      file.agents.forEach((agent, i) => {
        if (seen.has(agent.id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['agents', i, 'id'],
            message: `duplicate agent id "${agent.id}"`,
          });
        }
        seen.add(agent.id);
      });
      if (!seen.has(file.lead)) {
        ctx.addIssue({
          code: 'custom',
          path: ['lead'],
          message: `no agent with id "${file.lead}" is declared`,
        });
      }
    },
    {
      // zod skips refinements once any field has an issue; these checks need only the ids, so they
      // run whenever the ids are readable and are reported together with field problems.
      when: (payload) => {
        const v = payload.value as { lead?: unknown; agents?: unknown } | undefined;
        return (
          typeof v?.lead === 'string' &&
          Array.isArray(v.agents) &&
          v.agents.every((a) => typeof (a as { id?: unknown } | null)?.id === 'string')
        );
      },
    },
  );
export type AgentsFile = z.infer<typeof AgentsFileSchema>;

// ---------------------------------------------------------------------------------------------------------
// Plans

/** One step of a plan. Every field is filled by the lead agent, so every field says what it is for. */
export const PlanStepSchema = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, "_" or "-"')
      .describe('Short unique id of this step, e.g. "s1". Other steps name it in dependsOn.'),
    agent: z.string().describe('Id of the specialist agent that carries out this step.'),
    question: z
      .string()
      .min(1)
      .max(2000)
      .describe('The sub-question this step answers, self-contained, for the specialist.'),
    dependsOn: z
      .array(z.string())
      .default([])
      .describe(
        'Ids of the steps whose results this step needs. Steps with no dependency between them run in parallel.',
      ),
    decompose: z
      .boolean()
      .default(false)
      .describe(
        'True when this step is itself large enough to be planned again, one level deeper, by the lead.',
      ),
  })
  .strict();
export type PlanStep = z.infer<typeof PlanStepSchema>;

export const PlanSchema = z
  .object({
    rationale: z
      .string()
      .max(4000)
      .describe('Why this plan answers the question, in two or three sentences.'),
    steps: z.array(PlanStepSchema).min(1).describe('The steps, in any order; dependencies define the order.'),
  })
  .strict();
export type Plan = z.infer<typeof PlanSchema>;

/** The limits a plan is checked against: from the playbook, plus where in the hierarchy the plan sits. */
export interface PlanLimits {
  allowedAgents: readonly string[];
  maxSteps: number;
  /** Depth of the task being planned: 0 for the top-level task. */
  depth: number;
  maxDepth: number;
}

/**
 * Checks a parsed plan against the rules zod cannot express: declared agents only, limits,
 * unique ids, known dependencies, no cycles, and decomposition only while depth budget remains.
 * Returns every problem found (an empty list means the plan is valid).
 */
export function checkPlan(plan: Plan, limits: PlanLimits): string[] {
  const problems: string[] = [];
  if (plan.steps.length > limits.maxSteps) {
    problems.push(`plan has ${plan.steps.length} steps; the playbook allows at most ${limits.maxSteps}`);
  }
  const ids = new Set<string>();
  plan.steps.forEach((step, i) => {
    const where = `steps[${i}] ("${step.id}")`;
    if (ids.has(step.id)) problems.push(`${where}: duplicate step id`);
    ids.add(step.id);
    if (!limits.allowedAgents.includes(step.agent)) {
      problems.push(
        `${where}: agent "${step.agent}" is not allowed here; use one of: ${limits.allowedAgents.join(', ')}`,
      );
    }
    if (step.decompose && limits.depth >= limits.maxDepth) {
      problems.push(
        `${where}: decompose is true but the depth budget is spent (depth ${limits.depth} of max ${limits.maxDepth})`,
      );
    }
  });
  plan.steps.forEach((step, i) => {
    for (const dep of step.dependsOn) {
      if (dep === step.id) problems.push(`steps[${i}] ("${step.id}"): depends on itself`);
      else if (!ids.has(dep)) problems.push(`steps[${i}] ("${step.id}"): depends on unknown step "${dep}"`);
    }
  });
  const cycle = findCycle(plan.steps);
  if (cycle) problems.push(`dependency cycle: ${cycle.join(' -> ')}`);
  return problems;
}

function findCycle(steps: readonly PlanStep[]): string[] | undefined {
  const deps = new Map(steps.map((s) => [s.id, s.dependsOn.filter((d) => d !== s.id)]));
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...path.slice(path.indexOf(id)), id];
    state.set(id, 'visiting');
    path.push(id);
    for (const dep of deps.get(id) ?? []) {
      if (!deps.has(dep)) continue;
      const found = visit(dep);
      if (found) return found;
    }
    path.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const id of deps.keys()) {
    const found = visit(id);
    if (found) return found;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Playbooks

/** Milliseconds in a duration from config (a {@link DurationSchema} string, or milliseconds). */
export function durationMs(duration: TemporalDuration): number {
  if (typeof duration === 'number') return duration;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(duration);
  if (!match) throw new Error(`not a duration: "${duration}"`);
  const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  return Number(match[1]) * units[match[2] as keyof typeof units];
}

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
  })
  .strict();
export type PlaybookLimits = z.infer<typeof PlaybookLimitsSchema>;

export const PlaybookSchema = z
  .object({
    id: AgentIdSchema,
    description: z.string().min(1),
    /** Specialists the plan may use. The lead is implied and may not be listed. */
    agents: z.array(AgentIdSchema).min(1),
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
  })
  .strict()
  .superRefine((playbook, ctx) => {
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

// ---------------------------------------------------------------------------------------------------------
// Approvers

export const ApproversFileSchema = z
  .object({
    people: z
      .array(
        z
          .object({
            id: z.string().regex(/^[^\s*:]{1,200}$/, 'must be an identity without spaces, "*" or ":"'),
            name: z.string().min(1),
          })
          .strict(),
      )
      .default([]),
    groups: z
      .array(z.object({ id: AgentIdSchema, members: z.array(z.string().min(1)).min(1) }).strict())
      .default([]),
  })
  .strict()
  .superRefine((file, ctx) => {
    const people = new Set<string>();
    file.people.forEach((p, i) => {
      if (people.has(p.id))
        ctx.addIssue({ code: 'custom', path: ['people', i, 'id'], message: `duplicate person "${p.id}"` });
      people.add(p.id);
    });
    const groups = new Set<string>();
    file.groups.forEach((g, i) => {
      if (groups.has(g.id))
        ctx.addIssue({ code: 'custom', path: ['groups', i, 'id'], message: `duplicate group "${g.id}"` });
      groups.add(g.id);
      g.members.forEach((m, j) => {
        if (!people.has(m))
          ctx.addIssue({
            code: 'custom',
            path: ['groups', i, 'members', j],
            message: `"${m}" is not declared under people`,
          });
      });
    });
  });
export type ApproversFile = z.infer<typeof ApproversFileSchema>;

/** Expands group references to people; `"*"` stays as is. Unknown references are left out (config:check reports them). */
export function resolveApprovers(refs: readonly string[], file: ApproversFile): string[] {
  const out = new Set<string>();
  for (const ref of refs) {
    if (ref === '*') out.add('*');
    else if (ref.startsWith('group:'))
      file.groups.find((g) => g.id === ref.slice(6))?.members.forEach((m) => out.add(m));
    else if (file.people.some((p) => p.id === ref)) out.add(ref);
  }
  return [...out];
}

/** Gate approver references exist, and a quorum can be met by the people named. */
export function checkGatesAgainstApprovers(playbook: Playbook, file: ApproversFile): string[] {
  const problems: string[] = [];
  const check = (where: string, refs: readonly string[], quorum: number): void => {
    for (const ref of refs) {
      if (ref === '*') continue;
      if (ref.startsWith('group:')) {
        if (!file.groups.some((g) => g.id === ref.slice(6)))
          problems.push(`${where}.approvers: group "${ref.slice(6)}" is not declared in approvers.yaml`);
      } else if (!file.people.some((p) => p.id === ref)) {
        problems.push(`${where}.approvers: "${ref}" is not declared in approvers.yaml`);
      }
    }
    const resolved = resolveApprovers(refs, file);
    if (!resolved.includes('*') && resolved.length < quorum) {
      problems.push(
        `${where}.quorum: ${quorum} approvals needed but only ${resolved.length} approver(s) named`,
      );
    }
  };
  for (const gate of ['plan', 'report'] as const) {
    const g = playbook.gates[gate];
    if (!g.required) continue;
    check(`gates.${gate}`, g.approvers, g.quorum);
    if (g.escalation) check(`gates.${gate}.escalation`, g.escalation.approvers, g.escalation.quorum);
  }
  return problems;
}

/** A gate as a running task sees it: approver references resolved to people. */
export interface ResolvedGate extends Omit<GateConfig, 'approvers' | 'escalation'> {
  approvers: string[];
  escalation?: Omit<NonNullable<GateConfig['escalation']>, 'approvers'> & { approvers: string[] };
}

/** Everything a task needs from config, frozen at its start. Small enough to live in workflow history. */
export interface ConfigSnapshot {
  /** sha256 over the canonical form of agents, approvers and playbooks, as `sha256:<hex>`. */
  digest: string;
  playbook: Playbook;
  lead: SnapshotAgent;
  /** The specialists the playbook allows, by id. */
  specialists: Record<string, SnapshotAgent>;
  /** The playbook's gates with approvers resolved to people at the task's start. */
  gates: { plan: ResolvedGate; report: ResolvedGate };
  /** Whether the task keeps Baton's search attributes current: a worker setting, fixed at start. */
  searchAttributes: boolean;
}

/** Cross-file rules: the playbook's agents exist and are not the lead; a fixed plan obeys the limits. */
export function checkPlaybookAgainstAgents(playbook: Playbook, agents: AgentsFile): string[] {
  const problems: string[] = [];
  const declared = new Set(agents.agents.map((a) => a.id));
  playbook.agents.forEach((id) => {
    if (!declared.has(id)) problems.push(`agents: "${id}" is not declared in agents.yaml`);
    if (id === agents.lead)
      problems.push(`agents: "${id}" is the lead agent and cannot be a step's specialist`);
  });
  for (const p of checkFixedPlan(playbook)) problems.push(`fixedPlan: ${p}`);
  return problems;
}

/** A fixed plan obeys its playbook's limits and names only its agents. */
export function checkFixedPlan(playbook: Playbook): string[] {
  if (!playbook.fixedPlan) return [];
  return checkPlan(playbook.fixedPlan, { ...playbook.limits, allowedAgents: playbook.agents, depth: 0 });
}

/** A zod issue path rendered the way people read it: `agents[2].retry.maximumAttempts`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
