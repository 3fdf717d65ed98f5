/**
 * Plans: the schema of the plan the lead agent writes (or a playbook fixes in review), and the
 * rules a plan must obey that zod cannot express.
 */
import { z } from 'zod';
import type { Finding } from './common';

/** Most steps one step may depend on: keeps a batch of 100 steps' input small (contract/bounds.ts). */
export const MAX_DEPENDS_ON = 100;

/** One step of a plan. Every field is filled by the lead agent, so every field says what it is for. */
export const PlanStepSchema = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,32}$/, 'must be 1-32 letters, digits, "_" or "-"')
      .describe('Short unique id of this step, e.g. "s1". Other steps name it in dependsOn.'),
    agent: z.string().max(64).describe('Id of the specialist agent that carries out this step.'),
    question: z
      .string()
      .min(1)
      .max(2000)
      .describe('The sub-question this step answers, self-contained, for the specialist.'),
    dependsOn: z
      .array(z.string().max(32))
      .max(MAX_DEPENDS_ON)
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
  /**
   * The steps the plan's whole tree may hold, its own included: the playbook's `maxTotalSteps`, or
   * a decomposed step's share of it. Absent from snapshots taken before it existed: no bound.
   */
  maxTotalSteps?: number;
}

/**
 * What each decomposed step of `plan` may hold in its own tree: an equal share of what the plan's
 * steps leave of `maxTotalSteps`, rounded down. Undefined when the plan decomposes nothing (or has
 * no such bound).
 */
export function stepsPerChild(plan: Plan, limits: PlanLimits): number | undefined {
  if (limits.maxTotalSteps === undefined || limits.depth >= limits.maxDepth) return undefined;
  const decomposed = plan.steps.filter((s) => s.decompose).length;
  if (decomposed === 0) return undefined;
  return Math.floor(Math.max(0, limits.maxTotalSteps - plan.steps.length) / decomposed);
}

/**
 * Checks a parsed plan against the rules zod cannot express: declared agents only, limits,
 * unique ids, known dependencies, no cycles, and decomposition only while depth budget remains.
 * Returns every problem found (an empty list means the plan is valid).
 */
export function checkPlan(plan: Plan, limits: PlanLimits): string[] {
  return planFindings(plan, limits).map((f) => f.message);
}

/** {@link checkPlan}'s problems, each with the path (in the plan) of the step or field it is about. */
export function planFindings(plan: Plan, limits: PlanLimits): Finding[] {
  const problems: Finding[] = [];
  const add = (at: Finding['at'], message: string): void => {
    problems.push({ at, message });
  };
  const total = limits.maxTotalSteps;
  const share = stepsPerChild(plan, limits);
  if (plan.steps.length > limits.maxSteps) {
    // A child task's maxSteps is its share of maxTotalSteps when that is smaller (workflows/task-run.ts).
    const child = total !== undefined && limits.depth > 0 && total <= limits.maxSteps;
    add(
      ['steps'],
      `plan has ${plan.steps.length} steps; the playbook allows at most ${limits.maxSteps}${child ? " (this child task's share of maxTotalSteps)" : ''}`,
    );
  } else if (total !== undefined && plan.steps.length > total) {
    add(['steps'], `plan has ${plan.steps.length} steps; maxTotalSteps allows at most ${total}`);
  } else if (share !== undefined && share < 1) {
    const decomposed = plan.steps.filter((s) => s.decompose).length;
    add(
      ['steps'],
      `plan has ${plan.steps.length} steps, ${decomposed} of them decomposed: the ${total! - plan.steps.length} steps left of maxTotalSteps (${total}) leave a decomposed step no step of its own; decompose fewer steps, or plan fewer`,
    );
  }
  const ids = new Set<string>();
  plan.steps.forEach((step, i) => {
    const where = `steps[${i}] ("${step.id}")`;
    if (ids.has(step.id)) add(['steps', i, 'id'], `${where}: duplicate step id`);
    ids.add(step.id);
    if (!limits.allowedAgents.includes(step.agent)) {
      add(
        ['steps', i, 'agent'],
        `${where}: agent "${step.agent}" is not allowed here; use one of: ${limits.allowedAgents.join(', ')}`,
      );
    }
    if (step.decompose && limits.depth >= limits.maxDepth) {
      add(
        ['steps', i, 'decompose'],
        `${where}: decompose is true but the depth budget is spent (depth ${limits.depth} of max ${limits.maxDepth})`,
      );
    }
  });
  plan.steps.forEach((step, i) => {
    step.dependsOn.forEach((dep, j) => {
      const at = ['steps', i, 'dependsOn', j];
      if (dep === step.id) add(at, `steps[${i}] ("${step.id}"): depends on itself`);
      else if (!ids.has(dep)) add(at, `steps[${i}] ("${step.id}"): depends on unknown step "${dep}"`);
    });
  });
  const cycle = findCycle(plan.steps);
  if (cycle) {
    const first = plan.steps.findIndex((s) => s.id === cycle[0]);
    add(['steps', first, 'dependsOn'], `dependency cycle: ${cycle.join(' -> ')}`);
  }
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
