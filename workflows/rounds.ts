/**
 * Research rounds (docs/architecture.md, "How a task runs"): after the planned steps finish, and
 * before synthesis, the lead reviews the findings (by reference and summary) and answers done, or a
 * plan delta: new steps naming declared agents, depending on earlier steps or each other, and why.
 *
 *   - A delta is checked like a plan (contract/rounds.ts): by the activity, and again here. An
 *     invalid one is sent back with its problems, at most `maxPlanAttempts` times, each refusal
 *     audited (`plan-refused`); then the rounds end, the problems recorded, and the task
 *     synthesizes what it has, as it does when the review itself fails.
 *   - Where the playbook's `rounds.approval` is required, the delta waits at the plan gate, with
 *     the plan gate's rules (approvers, quorum, deadline, signed decisions), its subject the hash of
 *     the plan and the delta (`deltaSubject`). A rejection ends the rounds; a change request asks
 *     the lead again with it.
 *   - The new steps run as planned ones do (TaskRun.executeAdded): the same scheduler, retries,
 *     step-failure policy and budget. At most `rounds.max` deltas.
 *
 * A round shows in status as a {@link RoundStatus}, its steps marked with their round (a delta at
 * the gate shows as pending steps added to the plan); the provenance carries the rounds.
 *
 * Versioned: `patched('research-rounds')` is asked only by a task whose playbook allows rounds, so a
 * task with rounds.max 0, or one whose snapshot predates rounds, emits exactly the commands it did.
 */
import { isCancellation, log, patched, proxyActivities } from '@temporalio/workflow';
import { roundsOf, stepsPerChild, type ConfigSnapshot, type Plan } from '../config/schema';
import type { Activities } from '../contract/activities';
import { clipBytes, STEPS_PER_RUN } from '../contract/bounds';
import { deltaSubject } from '../contract/decision';
import { failureMessage } from '../contract/failures';
import type {
  Approval,
  ChangeRequest,
  Phase,
  RoundStatus,
  StepStatus,
  TaskStatus,
} from '../contract/messages';
import {
  answerProblems,
  boundedReason,
  deltaRoom,
  MAX_REVIEW_TEXT_BYTES,
  MAX_ROUND_PROBLEMS_BYTES,
  type DeltaLimits,
  type RoundReviewInput,
  type RoundReviewResult,
} from '../contract/rounds';
import { addAgentUsageInto, tokensOf } from '../contract/usage';
import { summaryText } from './calls';
import type { GateOutcome } from './gates';
import { now } from './status';
import { synthesisInputOf } from './synthesis';
import type { TaskRun } from './task-run';

/** v15: after the planned steps, the lead may add rounds of steps (a playbook with `rounds`). */
export const RESEARCH_ROUNDS = 'research-rounds';

/** What the rounds need of the task: its status and config, its run, its plan gate, its provenance. */
export interface RoundsHost {
  status: TaskStatus;
  config: ConfigSnapshot;
  run: TaskRun;
  setPhase(phase: Phase): void;
  /** Waits at the plan gate on `subject` (workflows/research.ts: continuing as a new run included). */
  decide(subject: string): Promise<GateOutcome | undefined>;
  /** A delta's approvals, for the provenance. */
  approved(approvals: Approval[]): void;
}

/** Whether the task runs rounds: its playbook allows some, in workflow code that has them (v15). */
export const takesRounds = (config: ConfigSnapshot): boolean =>
  roundsOf(config.playbook).max > 0 && patched(RESEARCH_ROUNDS);

/** The round whose delta waits at the plan gate, if any: where a task that continued as new resumes. */
export const pendingRound = (status: TaskStatus): RoundStatus | undefined =>
  status.rounds?.at(-1)?.decision === 'pending' ? status.rounds.at(-1) : undefined;

/** The review, with the lead's own timeouts and retry policy. */
function reviewRound(lead: ConfigSnapshot['lead'], input: RoundReviewInput): Promise<RoundReviewResult> {
  const why = input.change
    ? ' · changes requested'
    : input.previousProblems?.length
      ? ' · after an invalid delta'
      : '';
  return proxyActivities<Activities>({
    startToCloseTimeout: lead.timeouts.startToClose,
    heartbeatTimeout: lead.timeouts.heartbeat,
    retry: { ...lead.retry },
  }).reviewRound.executeWithOptions(
    { summary: summaryText(`round ${input.round} · ${lead.id} reviews the findings${why}`) },
    [input],
  );
}

/**
 * The rounds, after the planned steps: review, check, approve, run, until the lead is done, the
 * rounds end, or `rounds.max` deltas ran. A task that continued as new at a delta's gate resumes
 * there.
 */
export async function researchRounds(host: RoundsHost): Promise<void> {
  const { status, config } = host;
  const rounds = (status.rounds ??= []);
  const { max, approval } = roundsOf(config.playbook);
  let round = pendingRound(status);
  for (;;) {
    if (!round) {
      const n = rounds.length + 2;
      if (n > max + 1) return;
      round = await review(host, n);
      if (!round) return;
      if (approval === 'required') round.decision = 'pending';
    }
    while (round.decision === 'pending') {
      const outcome = await host.decide(subjectOf(status, round));
      if (outcome?.kind === 'reject') {
        withdraw(status, round);
        round.decision = 'rejected';
        round.by = [outcome.by];
        return;
      }
      if (outcome?.kind === 'requestChanges') {
        withdraw(status, round);
        round = await review(host, round.n, { by: outcome.by, comment: outcome.comment });
        if (!round) return;
        round.decision = 'pending';
        continue;
      }
      // Approved; a plan gate that is not required lets a delta through as it does a plan.
      host.approved(outcome?.approvals ?? []);
      round.decision = outcome ? 'approved' : 'no-approval-needed';
      if (outcome) round.by = outcome.approvals.map((a) => a.by);
    }
    const n = round.n;
    await host.run.executeAdded(status.steps.filter((s) => s.round === n));
    round = undefined;
  }
}

/**
 * Asks the lead to review round `n`, and checks its answer: a delta's steps are added to status as
 * pending (decision `no-approval-needed`, which the caller may make `pending`). Undefined when the
 * rounds end (done, refused, failed, no room), recorded in the round's status.
 */
async function review(host: RoundsHost, n: number, change?: ChangeRequest): Promise<RoundStatus | undefined> {
  const { status, config, run } = host;
  const { lead, playbook, specialists } = config;
  const end = (decision: RoundStatus['decision'], reason: string, problems?: string): undefined => {
    record(status, {
      n,
      at: now(),
      reason: boundedReason(reason),
      steps: [],
      decision,
      ...(problems ? { problems: clipBytes(problems, MAX_ROUND_PROBLEMS_BYTES) } : {}),
    });
    return undefined;
  };
  host.setPhase('planning');
  let problems: string[] | undefined;
  for (let attempt = 1; attempt <= playbook.limits.maxPlanAttempts; attempt++) {
    const limits = deltaLimits(status, config);
    if (deltaRoom(limits) <= 0) return end('no-room', '', roomProblem(limits));
    let answer: RoundReviewResult;
    try {
      answer = await reviewRound(lead, {
        question: status.question,
        lead: run.given(lead),
        round: n,
        lastRound: roundsOf(playbook).max + 1,
        ...reviewMaterial(status, run),
        specialists: Object.values(specialists).map(({ id, role }) => ({ id, role })),
        limits,
        change,
        previousProblems: problems,
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      log.warn('round review failed; the rounds end', { round: n, error: failureMessage(err) });
      return end('failed', '', failureMessage(err));
    }
    addAgentUsageInto(status.usage, lead.id, answer.usage);
    for (const call of answer.refusedToolCalls ?? [])
      status.audit.push({
        at: now(),
        gate: null,
        event: 'tool-call-refused',
        agent: lead.id,
        tool: call.tool,
        reason: call.reason,
      });
    // Checked again here, the review's tokens spent: the lead can never widen what the playbook allows.
    problems = answer.valid ? answerProblems(answer.answer, deltaLimits(status, config)) : answer.problems;
    if (answer.valid && problems.length === 0) {
      const { done, reason, steps } = answer.answer;
      if (done) return end('done', reason);
      status.steps.push(
        ...steps.map((s): StepStatus => ({ ...s, decompose: false, state: 'pending', round: n })),
      );
      return record(status, {
        n,
        at: now(),
        reason: boundedReason(reason),
        steps: steps.map((s) => s.id),
        decision: 'no-approval-needed',
      });
    }
    log.warn('invalid round delta', { round: n, attempt, problems });
    status.audit.push({
      at: now(),
      gate: null,
      event: 'plan-refused',
      agent: lead.id,
      reason: `round ${n}: ${problems.join('; ')}`,
    });
  }
  return end(
    'refused',
    '',
    `no valid delta in ${playbook.limits.maxPlanAttempts} attempts; last problems: ${(problems ?? []).join('; ')}`,
  );
}

/** Puts a round's status in place: a new round, or the same round asked again after a change request. */
function record(status: TaskStatus, round: RoundStatus): RoundStatus {
  const rounds = (status.rounds ??= []);
  const at = rounds.findIndex((r) => r.n === round.n);
  if (at < 0) rounds.push(round);
  else rounds[at] = round;
  return round;
}

/** A delta that was rejected or sent back: its steps leave the plan (the round keeps their ids). */
function withdraw(status: TaskStatus, round: RoundStatus): void {
  status.steps = status.steps.filter((s) => s.round !== round.n);
}

/**
 * What the decision on a delta is about: the plan it adds to (the approved plan's rationale and
 * every step before the round) and the round's reason and steps, as status shows them.
 */
function subjectOf(status: TaskStatus, round: RoundStatus): string {
  const asPlanStep = ({ id, agent, question, dependsOn, decompose }: StepStatus) => ({
    id,
    agent,
    question,
    dependsOn,
    decompose,
  });
  const plan: Plan = {
    rationale: status.plan?.rationale ?? '',
    steps: status.steps.filter((s) => s.round !== round.n).map(asPlanStep),
  };
  const steps = status.steps.filter((s) => s.round === round.n).map(asPlanStep);
  return deltaSubject(plan, { round: round.n, reason: round.reason, steps });
}

/**
 * What a delta may add now: the playbook's maxSteps (at most STEPS_PER_RUN), what maxTotalSteps
 * leaves after every step so far (a decomposed step's share of it included), and the steps the
 * token budget leaves room for as the scheduler estimates them (workflows/budget.ts): the average
 * step so far, with the synthesis still to come.
 */
function deltaLimits(status: TaskStatus, config: ConfigSnapshot): DeltaLimits {
  const { agents, limits, budget } = config.playbook;
  let totalLeft: number | undefined;
  if (limits.maxTotalSteps !== undefined) {
    const { maxSteps, maxDepth, maxTotalSteps } = limits;
    const planLimits = { allowedAgents: agents, maxSteps, depth: status.depth, maxDepth, maxTotalSteps };
    const share = status.plan ? (stepsPerChild(status.plan, planLimits) ?? 0) : 0;
    const decomposed = status.steps.filter((s) => s.decompose).length;
    totalLeft = Math.max(0, maxTotalSteps - status.steps.length - share * decomposed);
  }
  let budgetLeft: number | undefined;
  const max = budget?.maxTokensPerTask;
  const finished = status.steps.filter((s) => s.state === 'done' && s.usage);
  const perStep = finished.reduce((sum, s) => sum + tokensOf(s.usage!), 0) / Math.max(1, finished.length);
  if (max !== undefined && status.budget?.stopped) budgetLeft = 0;
  else if (max !== undefined && perStep > 0)
    budgetLeft = Math.max(0, Math.floor((max - tokensOf(status.usage)) / perStep) - 1);
  return {
    allowedAgents: agents,
    maxSteps: Math.min(limits.maxSteps, STEPS_PER_RUN),
    ...(totalLeft === undefined ? {} : { totalLeft }),
    ...(budgetLeft === undefined ? {} : { budgetLeft }),
    earlier: status.steps.map((s) => s.id),
  };
}

/** Why no step can be added: what the limits say. */
function roomProblem(limits: DeltaLimits): string {
  if (limits.totalLeft === 0) return 'maxTotalSteps leaves no step to add after the steps so far';
  return 'the token budget leaves no room for another step and the synthesis';
}

/**
 * What the review reads, shaped as synthesis's input (workflows/synthesis.ts): the finished steps'
 * findings by reference, and the steps that did not finish; with each one's summary, dependencies
 * and round. Questions and summaries share {@link MAX_REVIEW_TEXT_BYTES}, so the input stays small
 * whatever the number of steps.
 */
function reviewMaterial(status: TaskStatus, run: TaskRun): Pick<RoundReviewInput, 'steps' | 'skipped'> {
  const { steps, skipped = [] } = synthesisInputOf(
    status,
    run.given(run.config.lead),
    run.agentsByReference,
    undefined,
  );
  const byId = new Map(status.steps.map((s) => [s.id, s]));
  const share = Math.floor(MAX_REVIEW_TEXT_BYTES / 2 / Math.max(1, status.steps.length));
  return {
    steps: steps.map(({ sources: _sources, ...s }) => {
      const step = byId.get(s.id)!;
      return {
        ...s,
        question: clipBytes(s.question, share),
        ...(step.summary ? { summary: clipBytes(step.summary, share) } : {}),
        dependsOn: step.dependsOn,
        round: step.round ?? 1,
      };
    }),
    skipped: skipped.map((g) => ({
      ...g,
      question: clipBytes(g.question, share),
      reason: clipBytes(g.reason, share),
    })),
  };
}
