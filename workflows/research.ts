/**
 * The research workflows. Deterministic orchestration only: every side effect is an activity,
 * every wait is a durable condition or timer, and all state is rebuilt by replay.
 *
 * `researchTask` is what users start. It plans, waits for plan approval, executes the plan as a
 * DAG, synthesizes, waits for report sign-off and publishes. `researchSubtask` is a decomposed
 * step: a child that plans and executes one level deeper and returns a sub-report, with no gates
 * of its own (the parent's approved plan is what a person signed off).
 */
import {
  ApplicationFailure,
  condition,
  CancellationScope,
  executeChild,
  isCancellation,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type {
  Activities,
  PlanTaskInput,
  PublishInput,
  StepInput,
  StepResult,
  SynthesisInput,
} from '../contract/activities';
import type { RefusedToolCall } from '../contract/activities';
import {
  checkPlan,
  type AgentConfig,
  type ConfigSnapshot,
  type Plan,
  type PlanLimits,
  type Playbook,
} from '../config/schema';
import { addUsageInto } from '../contract/usage';
import { Gatekeeper } from './gates';
import * as messages from '../contract/messages';
import {
  BATON_PHASE,
  DECISIONS,
  type AuditEntry,
  ResearchTaskInputSchema,
  type ChangeRequest,
  type Phase,
  type Provenance,
  type ResearchTaskInput,
  type ResearchTaskResult,
  type StepStatus,
  type BatchInput,
  type BatchResult,
  type SubtaskInput,
  type SubtaskResult,
  type TaskStatus,
  type TokenUsage,
} from '../contract/messages';

/** Text as one line of at most `max` characters, for a summary in the Temporal Web UI. */
function summaryText(text: string, max = 200): string {
  const chars = [...text.replace(/\s+/g, ' ').trim()];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}

/**
 * Activities whose every call carries a one-line summary made from the call itself (`s2 · analyst:
 * Weigh A against B`), which the Temporal Web UI shows in the timeline and `temporal workflow
 * describe` prints. A summary is user metadata: replay does not compare it, so its wording may
 * change without a patch. Proxies are cheap: each call gets its own, with its own summary.
 */
function summarized(
  options: ActivityOptions,
  summarize: (name: string, input: unknown) => string,
): Activities {
  return new Proxy({} as Activities, {
    get(_target, name) {
      if (typeof name !== 'string') return undefined;
      return (...args: unknown[]) =>
        proxyActivities({ ...options, summary: summaryText(summarize(name, args[0])) })[name]!(...args);
    },
  });
}

/** Bookkeeping (config, publishing): quick, local I/O. */
const bookkeeping = summarized(
  { startToCloseTimeout: '1 minute', retry: { initialInterval: '1s', maximumAttempts: 5 } },
  (name, input) => {
    if (name === 'loadConfigSnapshot') return `config · playbook ${String(input)}`;
    if (name === 'publishReport') return `publish · ${(input as PublishInput).kind ?? 'final'} report`;
    if (name === 'assemblePartialReport') return 'publish · assemble partial report';
    return name;
  },
);

/** Model calls take the agent's own timeouts and retry policy from config. */
function agentActivities(agent: AgentConfig): Activities {
  const options: ActivityOptions = {
    startToCloseTimeout: agent.timeouts.startToClose,
    heartbeatTimeout: agent.timeouts.heartbeat,
    retry: { ...agent.retry },
  };
  return summarized(options, (name, input) => {
    if (name === 'planTask') {
      const { change, previousProblems } = input as PlanTaskInput;
      const why = change
        ? ' · changes requested'
        : previousProblems?.length
          ? ' · after an invalid plan'
          : '';
      return `plan · ${agent.id}${why}`;
    }
    if (name === 'runSpecialist') {
      const { step, change } = input as StepInput;
      return `${step.id} · ${agent.id}${change ? ' (changes requested)' : ''}: ${step.question}`;
    }
    if (name === 'synthesizeReport')
      return `synthesize · ${agent.id}${(input as SynthesisInput).change ? ' · changes requested' : ''}`;
    return `${name} · ${agent.id}`;
  });
}

/** What the Web UI shows of a decomposed step's child task: the step, its agent and its question. */
function childSummary(
  step: StepStatus,
  question: string,
  depth: number,
): { staticSummary: string; staticDetails: string } {
  return {
    staticSummary: summaryText(`${step.id} · ${step.agent}: ${step.question}`),
    staticDetails: `**Step ${step.id}** of \`${workflowInfo().workflowId}\` (agent ${step.agent}, depth ${depth}), planned again one level deeper.\n\n**Question:** ${question}`,
  };
}

const now = (): string => new Date().toISOString();

/**
 * Most steps one workflow run executes itself. A larger plan runs in `researchBatch` children, so
 * no run's history nears Temporal's warning size (10,240 events or 10 MB by default): about four
 * events per step for inline steps, a handful per batch for the parent.
 */
export const STEPS_PER_RUN = 100;
/** Batch children of one task running at once; `maxParallel` is shared between them. */
const BATCHES_IN_FLIGHT = 4;

type Usage = TaskStatus['usage'];

/**
 * Adds one model call's usage (or a child's per-agent usage) to the task's totals and the agent's:
 * tokens, cache reads and writes, and estimated cost (see `config/cost.ts` for how an unknown cost
 * and usage recorded before these fields existed add up).
 */
function addUsage(total: Usage, agentId: string, usage: TokenUsage): void {
  addUsageInto(total, usage);
  addUsageInto((total.byAgent[agentId] ??= { inputTokens: 0, outputTokens: 0 }), usage);
}

/** Every token a usage record counts, cache reads and writes included: what a budget is spent in. */
function totalTokens(usage: TokenUsage): number {
  return (
    usage.inputTokens +
    usage.outputTokens +
    (usage.cacheReadInputTokens ?? 0) +
    (usage.cacheCreationInputTokens ?? 0)
  );
}

function mergeUsage(total: Usage, other: Usage): void {
  for (const [agentId, usage] of Object.entries(other.byAgent)) addUsage(total, agentId, usage);
}

function newStatus(workflowId: string, question: string, playbook: string, depth: number): TaskStatus {
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

const failureMessage = (err: unknown): string => {
  if (err instanceof Error) {
    const cause = (err as Error & { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${failureMessage(cause)}` : err.message;
  }
  return String(err);
};

/**
 * Planning, execution and synthesis, shared by the top-level task and its children. Holds no
 * state of its own: everything observable lives in `status`.
 */
class TaskRun {
  constructor(
    private readonly status: TaskStatus,
    private readonly config: ConfigSnapshot,
    private readonly onPhase: (phase: Phase) => void = (phase) => (status.phase = phase),
  ) {}

  /**
   * The playbook's step-failure policy. Config snapshots recorded in history before the policy
   * existed lack it; they get the behaviour they were started with: fail the task.
   */
  private get stepFailure(): Playbook['onStepFailure'] {
    return this.config.playbook.onStepFailure ?? { retries: 0, then: 'fail' };
  }

  /**
   * Whether starting one more step could take the task past its token budget: the tokens spent so
   * far, plus, at the average of the steps finished so far, the steps in flight, the next one and
   * the synthesis that must still follow. Without a finished step there is no estimate yet, so
   * only tokens already spent count.
   */
  private overBudget(running: number): boolean {
    const max = this.config.playbook.budget?.maxTokensPerTask;
    if (max === undefined) return false;
    const finished = this.status.steps.filter((s) => s.state === 'done' && s.usage);
    const perStep = finished.length
      ? finished.reduce((sum, s) => sum + totalTokens(s.usage!), 0) / finished.length
      : 0;
    return totalTokens(this.status.usage) + (running + 2) * perStep > max;
  }

  /** Stops scheduling for the budget: recorded in status and the audit trail, once. */
  private stopForBudget(): void {
    if (this.status.budget?.stopped) return;
    const max = this.config.playbook.budget!.maxTokensPerTask!;
    const spent = totalTokens(this.status.usage);
    const reason = `token budget: ${spent} of ${max} tokens spent; the next step would exceed it`;
    this.status.budget = { ...this.status.budget, stopped: { at: now(), reason } };
    this.status.audit.push({ at: now(), gate: null, event: 'budget-exhausted', reason });
    log.warn('token budget reached; no new steps', { spent, max });
  }

  /** The agent as a step runs it: its output capped by the playbook's per-step budget. */
  private withStepBudget(agent: AgentConfig): AgentConfig {
    const perStep = this.config.playbook.budget?.maxTokensPerStep;
    return perStep === undefined || agent.maxTokens <= perStep ? agent : { ...agent, maxTokens: perStep };
  }

  /** A decomposed step's child works within the per-step budget, as its own task budget. */
  private childConfig(): ConfigSnapshot {
    const perStep = this.config.playbook.budget?.maxTokensPerStep;
    if (perStep === undefined) return this.config;
    const { playbook } = this.config;
    return {
      ...this.config,
      playbook: { ...playbook, budget: { maxTokensPerTask: perStep, maxTokensPerStep: perStep } },
    };
  }

  private get limits(): PlanLimits {
    const { playbook } = this.config;
    return {
      allowedAgents: playbook.agents,
      maxSteps: playbook.limits.maxSteps,
      depth: this.status.depth,
      maxDepth: playbook.limits.maxDepth,
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
      const answer = await agentActivities(lead).planTask({
        question: this.status.question,
        lead,
        specialists: Object.values(specialists).map(({ id, role }) => ({ id, role })),
        limits,
        change,
        previousProblems: problems,
      });
      addUsage(this.status.usage, lead.id, answer.usage);
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
      'PlanInvalid',
    );
  }

  /**
   * Runs the plan as a DAG: a step starts when all its dependencies are done, with at most
   * `maxParallel` steps in flight. After a step fails, no new step starts; the ones in flight
   * finish, and then the task fails naming the step.
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
    // A batch child's steps depend on steps its parent already ran: their results are given.
    const byId = new Map([...settledElsewhere, ...steps].map((s) => [s.id, s]));
    if (steps.length > STEPS_PER_RUN && patched('batched-execution'))
      return this.executeInBatches(steps, byId);
    const maxParallel = this.config.playbook.limits.maxParallel;
    let running = 0;
    let settled = 0;
    let failed: StepStatus | undefined;
    const settledState = (id: string): boolean => ['done', 'skipped'].includes(byId.get(id)?.state ?? '');
    for (;;) {
      for (const step of steps) {
        if (failed || running >= maxParallel || this.status.budget?.stopped) break;
        if (step.state !== 'pending' || !step.dependsOn.every(settledState)) continue;
        if (this.overBudget(running)) {
          this.stopForBudget();
          break;
        }
        running++;
        step.state = 'running';
        step.startedAt = now();
        this.runStepWithRetries(step, byId)
          .then(
            (result) => {
              step.state = 'done';
              step.summary = result.summary;
              step.sources = result.sources;
              step.result = result.result;
            },
            (err: unknown) => {
              step.error = failureMessage(err);
              // Cancellation is never skipped over: the task is stopping.
              if (this.stepFailure.then === 'skip' && !isCancellation(err)) {
                step.state = 'skipped';
                log.warn('step skipped', { step: step.id, error: step.error });
              } else {
                step.state = 'failed';
                failed ??= step;
              }
            },
          )
          .finally(() => {
            step.finishedAt = now();
            running--;
            settled++;
          });
      }
      if (running === 0) break;
      const before = settled;
      await condition(() => settled > before);
    }
    this.finishExecution(steps, failed);
  }

  /** After execution: steps the budget kept from running are skipped; a failed step fails the task. */
  private finishExecution(steps: StepStatus[], failed: StepStatus | undefined): void {
    const stopped = this.status.budget?.stopped;
    if (stopped) {
      for (const step of steps) {
        if (step.state === 'pending')
          Object.assign(step, { state: 'skipped', error: `not run: ${stopped.reason}` });
      }
    }
    if (failed) {
      throw ApplicationFailure.nonRetryable(
        `step "${failed.id}" (agent "${failed.agent}") failed: ${failed.error}`,
        'StepFailed',
      );
    }
  }

  /**
   * A plan too large for one workflow run's history: ready steps, and the pending steps that need
   * only them, are handed out in batches of at most {@link STEPS_PER_RUN}, each run by a
   * `researchBatch` child (with its own history), at most {@link BATCHES_IN_FLIGHT} at once; each
   * takes what is left of `maxParallel`, up to its size, so the steps in flight never exceed it. This run's history holds a few events
   * per batch instead of several per step. Step states here change when a batch finishes; each
   * batch child's `status` query shows its steps live.
   */
  private async executeInBatches(steps: StepStatus[], byId: Map<string, StepStatus>): Promise<void> {
    const { maxParallel } = this.config.playbook.limits;
    const { maxTokensPerStep } = this.config.playbook.budget ?? {};
    // A batch gets its share of maxParallel; the parent keeps the task budget, a batch only caps steps.
    const batchConfig = (slots: number): ConfigSnapshot => ({
      ...this.config,
      playbook: {
        ...this.config.playbook,
        limits: { ...this.config.playbook.limits, maxParallel: slots },
        budget: maxTokensPerStep === undefined ? undefined : { maxTokensPerStep },
      },
    });
    let slotsInUse = 0;
    const settledState = (id: string): boolean => ['done', 'skipped'].includes(byId.get(id)?.state ?? '');
    let inFlight = 0;
    let runningSteps = 0;
    let settled = 0;
    let batches = 0;
    let failed: StepStatus | undefined;
    for (;;) {
      while (
        !failed &&
        !this.status.budget?.stopped &&
        inFlight < BATCHES_IN_FLIGHT &&
        slotsInUse < maxParallel
      ) {
        const ready = steps.filter((s) => s.state === 'pending' && s.dependsOn.every(settledState));
        if (ready.length === 0) break;
        if (this.overBudget(runningSteps)) {
          this.stopForBudget();
          break;
        }
        // The ready steps, then pending steps whose dependencies are all settled or in the batch
        // (the child runs them in order), up to the batch size.
        const batch = ready.slice(0, STEPS_PER_RUN);
        const inBatch = new Set(batch.map((s) => s.id));
        for (let grew = true; grew && batch.length < STEPS_PER_RUN;) {
          grew = false;
          for (const step of steps) {
            if (batch.length >= STEPS_PER_RUN) break;
            if (step.state !== 'pending' || inBatch.has(step.id)) continue;
            if (!step.dependsOn.every((id) => inBatch.has(id) || settledState(id))) continue;
            batch.push(step);
            inBatch.add(step.id);
            grew = true;
          }
        }
        // The steps in flight across all batches never exceed maxParallel.
        const slots = Math.min(batch.length, maxParallel - slotsInUse);
        slotsInUse += slots;
        batches++;
        inFlight++;
        runningSteps += batch.length;
        for (const step of batch) Object.assign(step, { state: 'running', startedAt: now() });
        // What the batch needs of the steps it depends on: their state and result (skipped ones too).
        const context = [...new Set(batch.flatMap((s) => s.dependsOn))]
          .filter((id) => !inBatch.has(id))
          .map((id) => {
            const { agent, question, state, result } = byId.get(id)!;
            return { id, agent, question, dependsOn: [], decompose: false, state, result };
          });
        executeChild(researchBatch, {
          workflowId: `${workflowInfo().workflowId}/batch-${batches}`,
          args: [
            {
              question: this.status.question,
              depth: this.status.depth,
              config: batchConfig(slots),
              steps: batch.map(({ id, agent, question, dependsOn, decompose }) => ({
                id,
                agent,
                question,
                dependsOn,
                decompose,
              })),
              settled: context,
            },
          ],
          staticSummary: `batch ${batches}: steps ${batch[0]!.id}…${batch.at(-1)!.id} (${batch.length})`,
        })
          .then(
            (result) => {
              mergeUsage(this.status.usage, result.usage);
              this.status.audit.push(...(result.refusals ?? []));
              for (const done of result.steps) {
                const step = byId.get(done.id)!;
                Object.assign(step, done);
                if (step.state === 'failed') failed ??= step;
              }
            },
            (err: unknown) => {
              // The batch itself failed (not one of its steps): its unfinished steps fail with it.
              for (const step of batch) {
                if (step.state === 'running')
                  Object.assign(step, { state: 'failed', error: failureMessage(err) });
              }
              failed ??= batch.find((s) => s.state === 'failed');
            },
          )
          .finally(() => {
            for (const step of batch) step.finishedAt ??= now();
            inFlight--;
            slotsInUse -= slots;
            runningSteps -= batch.length;
            settled++;
          });
      }
      if (inFlight === 0) break;
      const before = settled;
      await condition(() => settled > before);
    }
    this.finishExecution(steps, failed);
  }

  /**
   * Runs the named steps again, given the reviewer's comment, before the report is re-synthesized.
   * Steps that depend on them are not re-run: the lead sees the new and the earlier results.
   */
  async rerun(ids: string[], change: ChangeRequest): Promise<void> {
    this.setPhase('executing');
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
            summary: result.summary,
            sources: result.sources,
            result: result.result,
          });
        }),
      );
    }
  }

  /** Runs a step, and again up to the playbook's `onStepFailure.retries` times if it fails. */
  private async runStepWithRetries(
    step: StepStatus,
    byId: Map<string, StepStatus>,
  ): Promise<Omit<StepResult, 'model'>> {
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

  private async runStep(
    step: StepStatus,
    byId: Map<string, StepStatus>,
    change?: ChangeRequest,
  ): Promise<Omit<StepResult, 'model'>> {
    const { playbook, specialists } = this.config;
    if (step.decompose && this.status.depth < playbook.limits.maxDepth) {
      // A re-run gets its own child id: the first child is kept as it was, for the record.
      step.childWorkflowId = `${workflowInfo().workflowId}/step-${step.id}${step.revision ? `/rev-${step.revision}` : ''}${(step.attempt ?? 1) > 1 ? `/attempt-${step.attempt}` : ''}`;
      const question = change ? `${step.question}\n\nReviewer's request: ${change.comment}` : step.question;
      const child = await executeChild(researchSubtask, {
        workflowId: step.childWorkflowId,
        args: [{ question, depth: this.status.depth + 1, config: this.childConfig() }],
        ...childSummary(step, question, this.status.depth + 1),
      });
      mergeUsage(this.status.usage, child.usage);
      for (const entry of child.refusals ?? []) {
        this.status.audit.push({ ...entry, step: entry.step ? `${step.id}/${entry.step}` : step.id });
      }
      step.usage = { inputTokens: child.usage.inputTokens, outputTokens: child.usage.outputTokens };
      return { summary: child.summary, sources: child.sources, result: child.result, usage: step.usage };
    }
    const agent = specialists[step.agent];
    if (!agent)
      throw ApplicationFailure.nonRetryable(
        `agent "${step.agent}" is not allowed by this playbook`,
        'PlanInvalid',
      );
    // A skipped dependency has no result: the step works from the others (the report says so).
    const context = step.dependsOn.flatMap((id) => {
      const dep = byId.get(id)!;
      return dep.result ? [{ id, agent: dep.agent, result: dep.result }] : [];
    });
    const result = await agentActivities(agent).runSpecialist({
      overallQuestion: this.status.question,
      step: { id: step.id, agent: step.agent, question: step.question },
      agent: this.withStepBudget(agent),
      context,
      change,
    });
    addUsage(this.status.usage, agent.id, result.usage);
    this.refusedToolCalls(agent.id, step.id, result.refusedToolCalls);
    step.usage = result.usage;
    return result;
  }

  /** The lead writes the report from the finished steps. */
  async synthesize(change?: ChangeRequest) {
    this.setPhase('synthesizing');
    const { lead } = this.config;
    const result = await agentActivities(lead).synthesizeReport({
      question: this.status.question,
      lead,
      steps: this.status.steps.flatMap((s) =>
        s.result
          ? [{ id: s.id, agent: s.agent, question: s.question, result: s.result, sources: s.sources ?? [] }]
          : [],
      ),
      skipped: this.status.steps
        .filter((s) => s.state === 'skipped')
        .map((s) => ({ id: s.id, agent: s.agent, question: s.question, reason: s.error ?? 'failed' })),
      change,
    });
    addUsage(this.status.usage, lead.id, result.usage);
    this.refusedToolCalls(lead.id, undefined, result.refusedToolCalls);
    this.status.report = { artifact: result.report };
    return result;
  }
}

/**
 * A research task: plan → plan gate → execute → synthesize → report gate → publish.
 * Decisions at the gates are handled by {@link Gatekeeper} (see its design note).
 */
export async function researchTask(rawInput: ResearchTaskInput): Promise<ResearchTaskResult> {
  const info = workflowInfo();
  const raw = (rawInput ?? {}) as Partial<ResearchTaskInput>;
  const status = newStatus(
    info.workflowId,
    typeof raw.question === 'string' ? raw.question : '',
    typeof raw.playbook === 'string' ? raw.playbook : 'research-brief',
    0,
  );
  const startedAt = now();
  let config: ConfigSnapshot | undefined;
  const setPhase = (phase: Phase): void => {
    status.phase = phase;
    // Before config is loaded the task does not know whether the server has the attributes.
    if (config?.searchAttributes) upsertSearchAttributes([{ key: BATON_PHASE, value: phase }]);
  };
  const gates = new Gatekeeper(status, setPhase, () => config);

  setHandler(messages.status, () => status);
  setHandler(messages.audit, () => status.audit);
  for (const decision of DECISIONS) {
    setHandler(messages[decision], (payload: unknown) => gates.signal(decision, payload));
  }
  setHandler(messages.decide, (request) => gates.update(request), {
    validator: (request) => gates.validate(request),
  });

  const fail = (err: unknown): never => {
    setPhase('failed');
    status.error = failureMessage(err);
    throw err;
  };

  const parsedInput = ResearchTaskInputSchema.safeParse(rawInput);
  if (!parsedInput.success) {
    const problems = parsedInput.error.issues
      .map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)
      .join('; ');
    fail(ApplicationFailure.nonRetryable(`invalid researchTask input: ${problems}`, 'InvalidInput'));
  }
  const input = parsedInput.data!;
  status.question = input.question;
  status.playbook = input.playbook;

  const approvals: Provenance['approvals'] = [];
  const provenance = (snapshot: ConfigSnapshot): Provenance => ({
    generator: 'baton',
    aiGenerated: true,
    workflowId: info.workflowId,
    runId: info.runId,
    question: status.question,
    playbook: status.playbook,
    configDigest: snapshot.digest,
    agents: [snapshot.lead, ...Object.values(snapshot.specialists)]
      .filter((a) => status.usage.byAgent[a.id])
      .map((a) => ({ id: a.id, model: a.model, role: a.role })),
    usage: status.usage,
    approvals,
    audit: status.audit,
    ...(status.budget ? { budget: status.budget } : {}),
    startedAt,
    finishedAt: now(),
  });

  try {
    setPhase('loading-config');
    const snapshot = await bookkeeping.loadConfigSnapshot(input.playbook);
    config = snapshot;
    status.configDigest = snapshot.digest;
    if (snapshot.playbook.budget) status.budget = { ...snapshot.playbook.budget };
    const run = new TaskRun(status, snapshot, setPhase);
    const rejected = (): ResearchTaskResult => {
      setPhase('rejected');
      return { outcome: 'rejected', workflowId: info.workflowId, provenance: provenance(snapshot) };
    };

    let plan = await run.plan();
    for (;;) {
      const outcome = await gates.wait('plan', snapshot.gates.plan);
      if (!outcome) break;
      if (outcome.kind === 'approve') {
        approvals.push(...outcome.approvals.map((a) => ({ gate: 'plan' as const, ...a })));
        break;
      }
      if (outcome.kind === 'reject') return rejected();
      plan = await run.plan({ by: outcome.by, comment: outcome.comment });
    }

    await run.execute(plan);

    let report = await run.synthesize();
    for (;;) {
      // v2: approvers get the draft as a labelled file to read before they decide.
      if (snapshot.gates.report.required && patched('draft-preview-before-report-gate')) {
        const draft = await bookkeeping.publishReport({
          report: report.report,
          provenance: provenance(snapshot),
          kind: 'draft',
        });
        status.report = { artifact: report.report, draftPath: draft.path };
      }
      const outcome = await gates.wait('report', snapshot.gates.report);
      if (!outcome) break;
      if (outcome.kind === 'approve') {
        approvals.push(...outcome.approvals.map((a) => ({ gate: 'report' as const, ...a })));
        break;
      }
      if (outcome.kind === 'reject') return rejected();
      const change = { by: outcome.by, comment: outcome.comment };
      if (outcome.rerunSteps.length) await run.rerun(outcome.rerunSteps, change);
      report = await run.synthesize(change);
    }

    setPhase('publishing');
    const final = provenance(snapshot);
    const published = await bookkeeping.publishReport({
      report: report.report,
      provenance: final,
      kind: 'final',
    });
    status.report = { artifact: report.report, path: published.path };
    setPhase('completed');
    return {
      outcome: 'completed',
      workflowId: info.workflowId,
      reportPath: published.path,
      report: report.report,
      provenance: { ...final, contentHash: published.contentHash, reportKind: 'final' },
    };
  } catch (err) {
    if (!isCancellation(err) || !config) return fail(err);
    // Cancelled (`temporal workflow cancel`): keep what was done. Steps in flight were cancelled
    // with the task; the partial report is written in a scope the cancellation cannot reach.
    const snapshot = config;
    for (const step of status.steps) {
      if (step.state === 'running')
        Object.assign(step, { state: 'failed', error: 'cancelled with the task' });
    }
    status.error = 'the task was cancelled';
    status.pendingGate = undefined; // nobody is asked to decide on a cancelled task
    await CancellationScope.nonCancellable(async () => {
      const done = status.steps.filter((s) => s.result);
      const report =
        status.report?.artifact ??
        (done.length > 0
          ? await bookkeeping.assemblePartialReport({
              question: status.question,
              steps: done.map((s) => ({ id: s.id, agent: s.agent, question: s.question, result: s.result! })),
            })
          : undefined);
      if (!report) return;
      const partial = await bookkeeping.publishReport({
        report,
        provenance: provenance(snapshot),
        kind: 'partial',
      });
      status.report = { ...status.report, artifact: report, path: partial.path };
    });
    setPhase('cancelled');
    throw err;
  }
}

/**
 * One batch of a large plan's steps, whose dependencies outside the batch have finished: runs them
 * as a DAG, as a task would (agent retries, the step-failure policy, decomposition), and returns
 * every step's outcome, failed and never-started ones included, for the parent to record. Has no
 * gates and plans nothing.
 */
export async function researchBatch(input: BatchInput): Promise<BatchResult> {
  const status = newStatus(workflowInfo().workflowId, input.question, input.config.playbook.id, input.depth);
  setHandler(messages.status, () => status);
  status.configDigest = input.config.digest;
  const run = new TaskRun(status, input.config);
  try {
    await run.execute({ rationale: 'A batch of a larger plan.', steps: input.steps }, input.settled);
  } catch (err) {
    // A failed step is reported to the parent with the others; anything else fails the batch.
    if (isCancellation(err) || !(err instanceof ApplicationFailure) || err.type !== 'StepFailed') throw err;
  }
  status.phase = 'completed';
  const refusals = status.audit.filter((e) => e.event === 'plan-refused' || e.event === 'tool-call-refused');
  return {
    steps: status.steps,
    usage: status.usage,
    ...(refusals.length ? { refusals } : {}),
  };
}

/** A decomposed step: plans again one level deeper, executes, and returns a sub-report. */
export async function researchSubtask(input: SubtaskInput): Promise<SubtaskResult> {
  const status = newStatus(workflowInfo().workflowId, input.question, input.config.playbook.id, input.depth);
  setHandler(messages.status, () => status);
  status.configDigest = input.config.digest;
  if (input.config.playbook.budget) status.budget = { ...input.config.playbook.budget };
  try {
    const run = new TaskRun(status, input.config);
    await run.execute(await run.plan());
    const report = await run.synthesize();
    status.phase = 'completed';
    const sources = status.steps.flatMap((s) => s.sources ?? []).slice(0, 20);
    const refusals = status.audit.filter(
      (e) => e.event === 'plan-refused' || e.event === 'tool-call-refused',
    );
    return {
      summary: report.summary,
      result: report.report,
      sources,
      usage: status.usage,
      ...(refusals.length ? { refusals } : {}),
    };
  } catch (err) {
    status.phase = isCancellation(err) ? 'cancelled' : 'failed';
    status.error = failureMessage(err);
    throw err;
  }
}
