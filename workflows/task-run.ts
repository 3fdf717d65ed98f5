/**
 * One run of a research task's work, shared by the top-level task and its children: planning,
 * executing the plan as a DAG, re-running steps a reviewer named, and synthesis. Holds no state of
 * its own: everything observable lives in the task's `status` (workflows/status.ts).
 *
 * Execution hands the plan to the one scheduler (workflows/scheduler.ts), one step at a time, or,
 * for a plan over {@link STEPS_PER_RUN} steps, in batches run by child workflows
 * (workflows/batches.ts). The token budget is workflows/budget.ts; docs/architecture.md ("How a
 * task runs", "When a step fails") tells the whole story.
 */
import {
  ApplicationFailure,
  condition,
  isCancellation,
  log,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import {
  checkPlan,
  stepsPerChild,
  type ConfigSnapshot,
  type Plan,
  type PlanLimits,
  type Playbook,
  type SnapshotAgent,
} from '../config/schema';
import { narrowConfig } from '../contract/children';
import {
  boundedError,
  boundedOutcome,
  snapshotRefOf,
  type GivenAgent,
  type RefusedToolCall,
  type StepInput,
  type StepResult,
  type SummaryResult,
  type SynthesisResult,
} from '../contract/activities';
import { failureMessage, FailureTypes } from '../contract/failures';
import type { AuditEntry, ChangeRequest, Phase, StepStatus, TaskStatus } from '../contract/messages';
import { documentsOf } from './documents';
import { mcpToolsOf } from '../contract/tool-loop';
import { addAgentUsageInto, tokensOf } from '../contract/usage';
import { CANCEL_KEEPS_BATCH_STEPS, inBatches, STEPS_PER_RUN } from './batches';
import { Budget } from './budget';
import { planTask, runSpecialist } from './calls';
import { CHILDREN_VERIFY, runChildStep, type ChildSource } from './children';
import { runDag, type Unit, type Work } from './scheduler';
import { synthesisInputOf, synthesize as synthesizeFitting } from './synthesis';
import { now } from './status';
import { runToolLoop, type ToolLoopRun } from './tool-loop';

type StepOutcome = Omit<StepResult, 'model'>;

/**
 * v12: model activities are given agents by reference to the stored config snapshot, and synthesis
 * a specialist step's sources by reference, instead of inline in every call's input.
 */
export const AGENTS_BY_REFERENCE = 'agents-by-reference';

/** A unit of work that is one step. */
interface OneStep extends Unit {
  step: StepStatus;
}

export class TaskRun {
  private readonly budget: Budget;
  /** The config this run works with: the snapshot, narrowed by a parent's bounds for a child. */
  readonly config: ConfigSnapshot;
  /** What each decomposed step of the plan being executed may hold in its tree (`maxTotalSteps`). */
  private stepsPerChild: number | undefined;
  /** The batch children of the plan being executed, when it runs in batches. */
  private batches: ReturnType<typeof inBatches> | undefined;
  /** The stored snapshot's name when this run gives agents (and sources) by reference (v12). */
  private readonly snapshotRef: string | undefined;
  /** The task's tool gate (workflows/gates.ts), when this run has one: a child's or a batch's has none. */
  approveToolCall: ToolLoopRun['approve'];

  /** `source`: the task's snapshot as loaded (or given a child), and a child's bounds since v8. */
  constructor(
    private readonly status: TaskStatus,
    private readonly source: ChildSource,
    private readonly onPhase: (phase: Phase) => void = (phase) => (status.phase = phase),
    /** For a run that took up a task continued as new: whether its first run gave agents by reference. */
    byReference?: boolean,
  ) {
    this.config = source.bounds ? narrowConfig(source.config, source.bounds) : source.config;
    this.budget = new Budget(status, this.config);
    // The snapshot is in the artifact store when this run loaded it (a task) or had it checked (a
    // child since v8, given bounds); never when it is one only a worker before v8 loads (no seal, no
    // maxTotalSteps), nor the narrowed copy a child before v8 was given. Decided once, here, right
    // after that activity: a task that loaded its snapshot before v12 keeps giving agents inline
    // for its whole life.
    const { seal, playbook } = source.config;
    const loadedBeforeV8 = !seal && playbook.limits.maxTotalSteps === undefined;
    const stored =
      !loadedBeforeV8 && (source.bounds !== undefined || workflowInfo().workflowType === 'researchTask');
    const byRef = byReference ?? (stored && patched(AGENTS_BY_REFERENCE));
    this.snapshotRef = byRef ? snapshotRefOf(source.config) : undefined;
  }

  /** Whether this run gives model activities their agent by reference (a continued run keeps it). */
  get agentsByReference(): boolean {
    return this.snapshotRef !== undefined;
  }

  /**
   * An agent as a model activity is given it: by reference to the stored snapshot (v12), with
   * `maxTokens` only when it is lowered; or inline, `maxTokens` applied.
   */
  given(agent: SnapshotAgent, maxTokens?: number): GivenAgent {
    if (this.snapshotRef === undefined) return maxTokens === undefined ? agent : { ...agent, maxTokens };
    return { id: agent.id, snapshot: this.snapshotRef, ...(maxTokens === undefined ? {} : { maxTokens }) };
  }

  /**
   * The playbook's step-failure policy. Config snapshots recorded in history before the policy
   * existed lack it; they get the behaviour they were started with: fail the task.
   */
  private get stepFailure(): Playbook['onStepFailure'] {
    return this.config.playbook.onStepFailure ?? { retries: 0, then: 'fail' };
  }

  /**
   * What a plan here must obey. `maxTotalSteps` (absent from snapshots taken before it) also caps
   * the plan's own steps, and leaves each decomposed step at least one.
   */
  private get limits(): PlanLimits {
    const { maxSteps, maxDepth, maxTotalSteps } = this.config.playbook.limits;
    return {
      allowedAgents: this.config.playbook.agents,
      maxSteps: maxTotalSteps === undefined ? maxSteps : Math.min(maxSteps, maxTotalSteps),
      depth: this.status.depth,
      maxDepth,
      maxTotalSteps,
    };
  }

  /** Records what Baton refused a model: it is in the audit trail, so in the provenance too. */
  private refused(entry: Omit<AuditEntry, 'at' | 'gate'>): void {
    this.status.audit.push({ at: now(), gate: null, ...entry });
  }

  private refusedToolCalls(agent: string, step: string | undefined, calls: RefusedToolCall[] = []): void {
    for (const call of calls) {
      this.refused({ event: 'tool-call-refused', agent, step, tool: call.tool, reason: call.reason });
    }
  }

  private setPhase(phase: Phase): void {
    this.onPhase(phase);
    log.info('phase', { phase });
  }

  /**
   * Gets a valid plan: the playbook's fixed plan, or the lead's, re-asked with the validation
   * problems at most `maxPlanAttempts` times. The workflow checks the plan again itself: the
   * planner can never widen what the playbook allows.
   */
  async plan(change?: ChangeRequest): Promise<Plan> {
    this.setPhase('planning');
    const { playbook, lead, specialists } = this.config;
    if (playbook.fixedPlan && this.status.depth === 0) {
      this.status.plan = playbook.fixedPlan;
      return playbook.fixedPlan;
    }
    const limits = this.limits;
    let problems: string[] | undefined;
    for (let attempt = 1; attempt <= playbook.limits.maxPlanAttempts; attempt++) {
      this.status.planAttempts++;
      const answer = await planTask(lead, {
        question: this.status.question,
        lead: this.given(lead),
        specialists: Object.values(specialists).map(({ id, role }) => ({ id, role })),
        limits,
        change,
        previousProblems: problems,
        ...documentsOf(this.status),
      });
      addAgentUsageInto(this.status.usage, lead.id, answer.usage);
      this.refusedToolCalls(lead.id, undefined, answer.refusedToolCalls);
      problems = answer.valid ? checkPlan(answer.plan, limits) : answer.problems;
      if (answer.valid && problems.length === 0) {
        this.status.plan = answer.plan;
        return answer.plan;
      }
      log.warn('invalid plan', { attempt, problems });
      this.refused({ event: 'plan-refused', agent: lead.id, reason: problems.join('; ') });
    }
    throw ApplicationFailure.nonRetryable(
      `the lead agent "${lead.id}" produced no valid plan in ${playbook.limits.maxPlanAttempts} attempts; last problems: ${(problems ?? []).join('; ')}`,
      FailureTypes.PlanInvalid,
    );
  }

  /**
   * Runs the plan as a DAG (workflows/scheduler.ts): a step starts when all its dependencies are
   * settled, with at most `maxParallel` steps in flight. After a step fails, no new step starts;
   * the ones in flight finish, and then the task fails naming the step. Steps the token budget kept
   * from running are skipped. `settledElsewhere`: a batch child's dependencies its parent already ran.
   */
  async execute(plan: Plan, settledElsewhere: StepStatus[] = []): Promise<void> {
    this.setPhase('executing');
    const steps: StepStatus[] = plan.steps.map((s) => ({
      id: s.id,
      agent: s.agent,
      question: s.question,
      dependsOn: s.dependsOn,
      decompose: s.decompose,
      state: 'pending',
    }));
    this.status.steps = steps;
    this.stepsPerChild = stepsPerChild(plan, this.limits);
    const byId = new Map([...settledElsewhere, ...steps].map((s) => [s.id, s]));
    this.batches =
      steps.length > STEPS_PER_RUN && patched('batched-execution') && !this.childrenCannotCheck()
        ? inBatches(this.status, this.config, steps, byId, (slots, batch) => this.batchSource(slots, batch))
        : undefined;
    const failed = this.batches
      ? await runDag(steps, byId, this.budget, this.batches)
      : await runDag(steps, byId, this.budget, this.oneStepAtATime(byId));
    this.settled(failed);
  }

  /** Runs the steps a research round added (workflows/rounds.ts), in status already, as planned ones run. */
  async executeAdded(steps: StepStatus[]): Promise<void> {
    this.setPhase('executing');
    const byId = new Map(this.status.steps.map((s) => [s.id, s]));
    this.settled(await runDag(steps, byId, this.budget, this.oneStepAtATime(byId)));
  }

  /** After execution: the steps the budget kept from running are skipped; a failed step fails the task. */
  private settled(failed: StepStatus | undefined): void {
    this.budget.skipUnstarted();
    if (failed) {
      throw ApplicationFailure.nonRetryable(
        `step "${failed.id}" (agent "${failed.agent}") failed: ${failed.error}`,
        FailureTypes.StepFailed,
      );
    }
  }

  /** Steps as the scheduler's units of work, one each, run here with the step-failure policy. */
  private oneStepAtATime(byId: Map<string, StepStatus>): Work<OneStep, StepOutcome> {
    const { maxParallel } = this.config.playbook.limits;
    return {
      hasRoom: (inFlight) => inFlight < maxParallel,
      take: ([step]) => ({ step: step!, steps: [step!] }),
      start: ({ step }) => {
        step.state = 'running';
        step.startedAt = now();
        return this.runStepWithRetries(step, byId);
      },
      succeeded: ({ step }, result) => {
        Object.assign(step, { state: 'done', ...boundedOutcome(result.summary, result.sources) });
        step.result = result.result;
        if (result.sourcesRef) step.sourcesRef = result.sourcesRef;
        if (result.retrievedRef)
          Object.assign(step, { retrievedRef: result.retrievedRef, retrieved: result.retrieved });
        return undefined;
      },
      failed: ({ step }, err) => {
        step.error = boundedError(failureMessage(err));
        // Cancellation is never skipped over: the task is stopping.
        if (this.stepFailure.then === 'skip' && !isCancellation(err)) {
          step.state = 'skipped';
          log.warn('step skipped', { step: step.id, error: step.error });
          return undefined;
        }
        step.state = 'failed';
        return step;
      },
      release: ({ step }) => {
        step.finishedAt = now();
      },
    };
  }

  /**
   * When the task is cancelled (call in a non-cancellable scope): waits for the batch children in
   * flight, which return their finished steps when cancelled, so those reach the partial report
   * (v11.1). Without batches in flight there is nothing to wait for.
   */
  async settleBatches(): Promise<void> {
    const batches = this.batches;
    if (batches && batches.inFlight() > 0 && patched(CANCEL_KEEPS_BATCH_STEPS))
      await condition(() => batches.inFlight() === 0);
  }

  /**
   * Runs the named steps again, given the reviewer's comment, before the report is re-synthesized.
   * Steps that depend on them are not re-run: the lead sees the new and the earlier results.
   */
  async rerun(ids: string[], change: ChangeRequest): Promise<void> {
    this.setPhase('executing');
    // A run that took up a task continued as new (workflows/continue.ts) did not execute its plan:
    // its decomposed steps' share of maxTotalSteps comes from the plan, as it did in the first run.
    if (this.stepsPerChild === undefined && this.status.plan)
      this.stepsPerChild = stepsPerChild(this.status.plan, this.limits);
    const byId = new Map(this.status.steps.map((s) => [s.id, s]));
    const maxParallel = this.config.playbook.limits.maxParallel;
    for (let i = 0; i < ids.length; i += maxParallel) {
      await Promise.all(
        ids.slice(i, i + maxParallel).map(async (id) => {
          const step = byId.get(id)!;
          step.state = 'running';
          step.revision = (step.revision ?? 0) + 1;
          const result = await this.runStep(step, byId, change);
          Object.assign(step, {
            state: 'done',
            ...boundedOutcome(result.summary, result.sources),
            result: result.result,
            // A decomposed step's child has no sources artifact: an earlier run's must not stay.
            sourcesRef: result.sourcesRef,
            retrievedRef: result.retrievedRef,
            retrieved: result.retrieved,
          });
        }),
      );
    }
  }

  /** Runs a step, and again up to the playbook's `onStepFailure.retries` times if it fails. */
  private async runStepWithRetries(step: StepStatus, byId: Map<string, StepStatus>): Promise<StepOutcome> {
    const { retries } = this.stepFailure;
    for (let attempt = 1; ; attempt++) {
      step.attempt = attempt;
      try {
        return await this.runStep(step, byId);
      } catch (err) {
        if (attempt > retries || isCancellation(err)) throw err;
        log.warn('step failed; running it again', { step: step.id, attempt, error: failureMessage(err) });
      }
    }
  }

  /** Runs one step: a specialist's activity, or a `researchSubtask` child for a decomposed step. */
  private async runStep(
    step: StepStatus,
    byId: Map<string, StepStatus>,
    change?: ChangeRequest,
  ): Promise<StepOutcome> {
    const { playbook, specialists } = this.config;
    if (step.decompose && this.status.depth < playbook.limits.maxDepth && !this.childrenCannotCheck()) {
      // v8: the snapshot as sealed and the child's bounds (its budget and its share of
      // maxTotalSteps), which the child checks. Before: a narrowed copy of the snapshot.
      const given: ChildSource = patched(CHILDREN_VERIFY)
        ? { config: this.source.config, bounds: this.budget.childBounds(this.stepsPerChild) }
        : { config: this.budget.childConfig() };
      return runChildStep(this.status, step, given, change);
    }
    const agent = specialists[step.agent];
    if (!agent)
      throw ApplicationFailure.nonRetryable(
        `agent "${step.agent}" is not allowed by this playbook`,
        FailureTypes.PlanInvalid,
      );
    // A skipped dependency has no result: the step works from the others (the report says so).
    const context = step.dependsOn.flatMap((id) => {
      const dep = byId.get(id)!;
      return dep.result ? [{ id, agent: dep.agent, result: dep.result }] : [];
    });
    const input: StepInput = {
      overallQuestion: this.status.question,
      step: { id: step.id, agent: step.agent, question: step.question },
      agent: this.given(agent, this.budget.stepMaxTokens(agent)),
      context,
      change,
      ...documentsOf(this.status),
    };
    // v14: a step whose agent has MCP tools runs as the durable tool loop (workflows/tool-loop.ts).
    const mcpTools = mcpToolsOf(agent.tools);
    const result = mcpTools.length
      ? await runToolLoop(agent, input, mcpTools, {
          spent: () => tokensOf(this.status.usage),
          maxTokensPerTask: this.config.playbook.budget?.maxTokensPerTask,
          mcpServers: this.config.mcpServers ?? {},
          approve: this.approveToolCall,
          audit: (entry) => this.refused(entry),
        })
      : await runSpecialist(agent, input);
    addAgentUsageInto(this.status.usage, agent.id, result.usage);
    this.refusedToolCalls(agent.id, step.id, result.refusedToolCalls);
    step.usage = result.usage;
    return result;
  }

  /**
   * Whether this run's children could not check its snapshot (v8): one loaded before v8 (no seal,
   * no `maxTotalSteps`) matches no seal, and no later worker's config re-derives it (defaults
   * change between releases). A task started before v8 then runs its decomposed steps as ordinary
   * steps and its large plans in this run. Replays of histories recorded before v8 take the old
   * branch (children as before).
   */
  private childrenCannotCheck(): boolean {
    const { seal, playbook } = this.source.config;
    if (seal || playbook.limits.maxTotalSteps !== undefined) return false;
    return patched(CHILDREN_VERIFY);
  }

  /**
   * What a batch child is given (v8): the snapshot as sealed and its bounds, its steps' share of
   * maxTotalSteps included; before v8, a narrowed copy of the snapshot.
   */
  private batchSource(slots: number, batch: StepStatus[]): ChildSource {
    if (!patched(CHILDREN_VERIFY)) return { config: this.budget.batchConfig(slots) };
    const decomposed = batch.filter((s) => s.decompose).length;
    const total =
      this.stepsPerChild === undefined ? undefined : batch.length + decomposed * this.stepsPerChild;
    return { config: this.source.config, bounds: this.budget.batchBounds(slots, total) };
  }

  /**
   * The lead writes the report from the finished steps: in one call, or since v10, when they are
   * too many or too long for the lead's context, in parts (workflows/synthesis.ts).
   */
  async synthesize(change?: ChangeRequest) {
    this.setPhase('synthesizing');
    const { lead } = this.config;
    const account = (result: SummaryResult | SynthesisResult): void => {
      addAgentUsageInto(this.status.usage, lead.id, result.usage);
      this.refusedToolCalls(lead.id, undefined, result.refusedToolCalls);
    };
    const result = await synthesizeFitting(
      { lead, maxParallel: this.config.playbook.limits.maxParallel, account },
      synthesisInputOf(this.status, this.given(lead), this.snapshotRef !== undefined, change),
    );
    account(result);
    this.status.report = { artifact: result.report };
    return result;
  }
}
