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
  executeChild,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities, StepResult } from '../activities';
import {
  checkPlan,
  type AgentConfig,
  type ConfigSnapshot,
  type GateConfig,
  type Plan,
  type PlanLimits,
} from '../config/schema';
import * as messages from './messages';
import {
  DecisionPayloadSchema,
  ResearchTaskInputSchema,
  type DecisionKind,
  type Gate,
  type Phase,
  type Provenance,
  type ResearchTaskInput,
  type ResearchTaskResult,
  type StepStatus,
  type SubtaskInput,
  type SubtaskResult,
  type TaskStatus,
  type TokenUsage,
} from './messages';

/** Bookkeeping (config, publishing): quick, local I/O. */
const bookkeeping = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

/** Model calls take the agent's own timeouts and retry policy from config. */
function agentActivities(agent: AgentConfig): Activities {
  const options: ActivityOptions = {
    startToCloseTimeout: agent.timeouts.startToClose,
    heartbeatTimeout: agent.timeouts.heartbeat,
    retry: { ...agent.retry },
    summary: `${agent.id} (${agent.model})`,
  };
  return proxyActivities<Activities>(options);
}

const now = (): string => new Date().toISOString();

type Usage = TaskStatus['usage'];

function addUsage(total: Usage, agentId: string, usage: TokenUsage): void {
  total.inputTokens += usage.inputTokens;
  total.outputTokens += usage.outputTokens;
  const mine = (total.byAgent[agentId] ??= { inputTokens: 0, outputTokens: 0 });
  mine.inputTokens += usage.inputTokens;
  mine.outputTokens += usage.outputTokens;
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
    decisions: [],
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
  ) {}

  private get limits(): PlanLimits {
    const { playbook } = this.config;
    return {
      allowedAgents: playbook.agents,
      maxSteps: playbook.limits.maxSteps,
      depth: this.status.depth,
      maxDepth: playbook.limits.maxDepth,
    };
  }

  private setPhase(phase: Phase): void {
    this.status.phase = phase;
    log.info('phase', { phase });
  }

  /**
   * Gets a valid plan: the playbook's fixed plan, or the lead's, re-asked with the validation
   * problems at most `maxPlanAttempts` times. The workflow checks the plan again itself: the
   * planner can never widen what the playbook allows.
   */
  async plan(change?: { by: string; comment: string }): Promise<Plan> {
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
      problems = answer.valid ? checkPlan(answer.plan, limits) : answer.problems;
      if (answer.valid && problems.length === 0) {
        this.status.plan = answer.plan;
        return answer.plan;
      }
      log.warn('invalid plan', { attempt, problems });
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
  async execute(plan: Plan): Promise<void> {
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
    const byId = new Map(steps.map((s) => [s.id, s]));
    const maxParallel = this.config.playbook.limits.maxParallel;
    let running = 0;
    let settled = 0;
    let failed: StepStatus | undefined;
    for (;;) {
      for (const step of steps) {
        if (failed || running >= maxParallel) break;
        if (step.state !== 'pending' || !step.dependsOn.every((d) => byId.get(d)?.state === 'done')) continue;
        running++;
        step.state = 'running';
        step.startedAt = now();
        this.runStep(step, byId)
          .then(
            (result) => {
              step.state = 'done';
              step.summary = result.summary;
              step.sources = result.sources;
              step.result = result.result;
            },
            (err: unknown) => {
              step.state = 'failed';
              step.error = failureMessage(err);
              failed ??= step;
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
    if (failed) {
      throw ApplicationFailure.nonRetryable(
        `step "${failed.id}" (agent "${failed.agent}") failed: ${failed.error}`,
        'StepFailed',
      );
    }
  }

  private async runStep(step: StepStatus, byId: Map<string, StepStatus>): Promise<Omit<StepResult, 'model'>> {
    const { playbook, specialists } = this.config;
    if (step.decompose && this.status.depth < playbook.limits.maxDepth) {
      step.childWorkflowId = `${workflowInfo().workflowId}/step-${step.id}`;
      const child = await executeChild(researchSubtask, {
        workflowId: step.childWorkflowId,
        args: [{ question: step.question, depth: this.status.depth + 1, config: this.config }],
        staticSummary: `${step.agent}: ${step.question.slice(0, 200)}`,
      });
      mergeUsage(this.status.usage, child.usage);
      step.usage = { inputTokens: child.usage.inputTokens, outputTokens: child.usage.outputTokens };
      return { summary: child.summary, sources: child.sources, result: child.result, usage: step.usage };
    }
    const agent = specialists[step.agent];
    if (!agent)
      throw ApplicationFailure.nonRetryable(
        `agent "${step.agent}" is not allowed by this playbook`,
        'PlanInvalid',
      );
    const context = step.dependsOn.map((id) => {
      const dep = byId.get(id)!;
      return { id, agent: dep.agent, result: dep.result! };
    });
    const result = await agentActivities(agent).runSpecialist({
      overallQuestion: this.status.question,
      step: { id: step.id, agent: step.agent, question: step.question },
      agent,
      context,
    });
    addUsage(this.status.usage, agent.id, result.usage);
    step.usage = result.usage;
    return result;
  }

  /** The lead writes the report from the finished steps. */
  async synthesize(change?: { by: string; comment: string }) {
    this.setPhase('synthesizing');
    const { lead } = this.config;
    const result = await agentActivities(lead).synthesizeReport({
      question: this.status.question,
      lead,
      steps: this.status.steps.map((s) => ({
        id: s.id,
        agent: s.agent,
        question: s.question,
        result: s.result!,
        sources: s.sources ?? [],
      })),
      change,
    });
    addUsage(this.status.usage, lead.id, result.usage);
    this.status.report = { artifact: result.report };
    return result;
  }
}

/** An accepted decision at a gate. */
interface GateDecision {
  kind: Exclude<DecisionKind, 'timeout'>;
  by: string;
  comment?: string;
  at: string;
}

/**
 * A research task: plan → plan gate → execute → synthesize → report gate → publish.
 *
 * Design note on decisions (signals):
 *   1. Handlers are registered before the first `await`, so a signal sent right after start is
 *      never lost.
 *   2. A decision is checked against the gate that is pending *now*: a signal for another gate,
 *      from someone not on the gate's approver list, malformed, or arriving after the gate's
 *      first decision, is refused and recorded, never applied.
 *   3. Signal handlers cannot answer the sender; the refusal is visible in `status.decisions`.
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
  let gateConfig: GateConfig | undefined;
  let decision: GateDecision | undefined;
  let maxRevisions = 0;
  let planIsFixed = false;

  setHandler(messages.status, () => status);
  const onDecision =
    (kind: GateDecision['kind']) =>
    (payload: unknown): void => {
      const at = now();
      const parsed = DecisionPayloadSchema.safeParse(payload);
      const pending = status.pendingGate;
      const record = (
        accepted: boolean,
        reason?: string,
        gate: Gate | null = pending?.gate ?? null,
      ): void => {
        const p = parsed.success ? parsed.data : undefined;
        const by =
          p?.by ??
          (typeof (payload as { by?: unknown })?.by === 'string'
            ? (payload as { by: string }).by
            : '(unknown)');
        status.decisions.push({ kind, by, gate: p?.gate ?? gate, comment: p?.comment, at, accepted, reason });
        if (!accepted) log.warn('decision refused', { kind, by, reason });
      };
      if (!parsed.success) {
        const problems = parsed.error.issues
          .map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`)
          .join('; ');
        return record(false, `malformed ${kind} payload: ${problems}`);
      }
      const { by, gate, comment } = parsed.data;
      if (!pending || !gateConfig)
        return record(false, `no gate is pending (phase: ${status.phase})`, gate ?? null);
      if (gate && gate !== pending.gate)
        return record(false, `the ${gate} gate is not pending; the pending gate is ${pending.gate}`);
      if (decision)
        return record(
          false,
          `the ${pending.gate} gate was already decided (${decision.kind} by ${decision.by})`,
        );
      if (!gateConfig.approvers.includes('*') && !gateConfig.approvers.includes(by)) {
        return record(
          false,
          `"${by}" is not an approver of the ${pending.gate} gate (approvers: ${gateConfig.approvers.join(', ')})`,
        );
      }
      if (kind === 'requestChanges') {
        if (!comment?.trim()) return record(false, 'requestChanges needs a comment saying what to change');
        if (pending.gate === 'plan' && planIsFixed) {
          return record(false, 'this playbook fixes the plan in config; approve or reject it');
        }
        if (status.revisions[pending.gate] >= maxRevisions) {
          return record(
            false,
            `the ${pending.gate} gate already had ${maxRevisions} revision round(s), the playbook's limit; approve or reject`,
          );
        }
      }
      decision = { kind, by, comment, at };
      record(true);
    };
  setHandler(messages.approve, onDecision('approve'));
  setHandler(messages.reject, onDecision('reject'));
  setHandler(messages.requestChanges, onDecision('requestChanges'));

  const approvals: Provenance['approvals'] = [];
  const waitAtGate = async (gate: Gate, config: GateConfig): Promise<GateDecision | undefined> => {
    if (!config.required) return undefined;
    gateConfig = config;
    decision = undefined;
    status.phase = gate === 'plan' ? 'awaiting-plan-approval' : 'awaiting-report-approval';
    const since = now();
    status.pendingGate = { gate, since, approvers: config.approvers };
    if (config.timeout) {
      const decided = await condition(() => decision !== undefined, config.timeout);
      if (!decided) {
        const kind = config.onTimeout === 'auto-approve' ? 'approve' : 'reject';
        decision = {
          kind,
          by: 'system',
          comment: `no decision within ${config.timeout}; policy: ${config.onTimeout}`,
          at: now(),
        };
        status.decisions.push({
          kind: 'timeout',
          by: 'system',
          gate,
          comment: decision.comment,
          at: decision.at,
          accepted: true,
        });
      }
    } else {
      await condition(() => decision !== undefined);
    }
    status.pendingGate = undefined;
    gateConfig = undefined;
    const taken = decision!;
    if (taken.kind === 'approve')
      approvals.push({ gate, by: taken.by, at: taken.at, comment: taken.comment });
    if (taken.kind === 'requestChanges') status.revisions[gate]++;
    return taken;
  };

  const fail = (err: unknown): never => {
    status.phase = 'failed';
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

  try {
    const config = await bookkeeping.loadConfigSnapshot(input.playbook);
    status.configDigest = config.digest;
    maxRevisions = config.playbook.limits.maxRevisions;
    planIsFixed = config.playbook.fixedPlan !== undefined;
    const run = new TaskRun(status, config);
    const { gates } = config.playbook;

    const provenance = (): Provenance => ({
      generator: 'baton',
      aiGenerated: true,
      workflowId: info.workflowId,
      runId: info.runId,
      question: input.question,
      playbook: input.playbook,
      configDigest: config.digest,
      agents: [config.lead, ...Object.values(config.specialists)]
        .filter((a) => status.usage.byAgent[a.id])
        .map((a) => ({ id: a.id, model: a.model, role: a.role })),
      usage: status.usage,
      approvals,
      startedAt,
      finishedAt: now(),
    });
    const rejected = (): ResearchTaskResult => {
      status.phase = 'rejected';
      return {
        outcome: 'rejected',
        workflowId: info.workflowId,
        provenance: provenance(),
        decisions: status.decisions,
      };
    };

    let plan = await run.plan();
    for (;;) {
      const taken = await waitAtGate('plan', gates.plan);
      if (!taken || taken.kind === 'approve') break;
      if (taken.kind === 'reject') return rejected();
      plan = await run.plan({ by: taken.by, comment: taken.comment ?? '' });
    }

    await run.execute(plan);

    let report = await run.synthesize();
    for (;;) {
      const taken = await waitAtGate('report', gates.report);
      if (!taken || taken.kind === 'approve') break;
      if (taken.kind === 'reject') return rejected();
      report = await run.synthesize({ by: taken.by, comment: taken.comment ?? '' });
    }

    status.phase = 'publishing';
    const final = provenance();
    const published = await bookkeeping.publishReport({ report: report.report, provenance: final });
    status.report = { artifact: report.report, path: published.path };
    status.phase = 'completed';
    return {
      outcome: 'completed',
      workflowId: info.workflowId,
      reportPath: published.path,
      report: report.report,
      provenance: { ...final, contentHash: published.contentHash },
      decisions: status.decisions,
    };
  } catch (err) {
    return fail(err);
  }
}

/** A decomposed step: plans again one level deeper, executes, and returns a sub-report. */
export async function researchSubtask(input: SubtaskInput): Promise<SubtaskResult> {
  const status = newStatus(workflowInfo().workflowId, input.question, input.config.playbook.id, input.depth);
  setHandler(messages.status, () => status);
  status.configDigest = input.config.digest;
  try {
    const run = new TaskRun(status, input.config);
    await run.execute(await run.plan());
    const report = await run.synthesize();
    status.phase = 'completed';
    const sources = status.steps.flatMap((s) => s.sources ?? []).slice(0, 20);
    return { summary: report.summary, result: report.report, sources, usage: status.usage };
  } catch (err) {
    status.phase = 'failed';
    status.error = failureMessage(err);
    throw err;
  }
}
