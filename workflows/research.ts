/**
 * The research workflows, and only their wiring (docs/architecture.md, "How a task runs").
 * Deterministic orchestration: every side effect is an activity (workflows/calls.ts), every wait a
 * durable condition or timer, and all state is rebuilt by replay.
 *
 *   - `researchTask` is what users start: plan → plan gate → execute → synthesize → report gate →
 *     publish. Gates are workflows/gates.ts; the work between them is a `TaskRun`
 *     (workflows/task-run.ts).
 *   - `researchSubtask` is a decomposed step: a child that plans and executes one level deeper and
 *     returns a sub-report, with no gates of its own (the parent's approved plan is what a person
 *     signed off).
 *   - `researchBatch` runs one batch of a large plan's steps for its parent (workflows/batches.ts).
 *
 * Changes here change the commands a task emits: keep every `patched()` id and its branches, and
 * replay the recorded histories (docs/architecture.md, "Versions of the workflow code").
 */
import {
  ApplicationFailure,
  CancellationScope,
  ContinueAsNew,
  isCancellation,
  log,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ConfigSnapshot } from '../config/schema';
import { boundedError, boundSources, MAX_SOURCES_PER_STEP } from '../contract/activities';
import { planSubject } from '../contract/decision';
import { failureMessage, FailureTypes } from '../contract/failures';
import * as messages from '../contract/messages';
import {
  BATON_PHASE,
  ResearchTaskInputSchema,
  type ArtifactRef,
  type BatchInput,
  type Gate,
  type BatchResult,
  type Phase,
  type Provenance,
  type ResearchTaskInput,
  type ResearchTaskResult,
  type SubtaskInput,
  type SubtaskResult,
  type TaskStatus,
} from '../contract/messages';
import { BatchInputSchema, inputProblems, SubtaskInputSchema } from '../contract/children';
import { assemblePartialReport, loadConfigSnapshot, publishReport } from './calls';
import { CANCEL_KEEPS_BATCH_STEPS } from './batches';
import { verifiedChild } from './children';
import { checkedReport, childRetrievals } from './citations';
import { handOver, HOLD_FROM_FIRST_TASK, resumeTask } from './continue';
import { Gatekeeper } from './gates';
import { pendingRound, researchRounds, takesRounds } from './rounds';
import { markCancelled, newStatus, now, provenanceOf, refusalsIn } from './status';
import { TaskRun } from './task-run';

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
  let startedAt = now();
  let config: ConfigSnapshot | undefined;
  const setPhase = (phase: Phase): void => {
    status.phase = phase;
    // Before config is loaded the task does not know whether the server has the attributes.
    if (config?.searchAttributes) upsertSearchAttributes([{ key: BATON_PHASE, value: phase }]);
  };
  const gates = new Gatekeeper(status, setPhase, () => config);
  // Before the first await, so that a decision sent right after start is never lost; a task that
  // continued as a new run holds decisions until its state (its open gate) is back.
  const holdFirst = raw.continued !== undefined && patched(HOLD_FROM_FIRST_TASK);
  if (holdFirst) gates.holdDecisions('resuming');
  gates.handleMessages();
  if (raw.continued !== undefined && !holdFirst) gates.holdDecisions('resuming');

  const fail = (err: unknown): never => {
    setPhase('failed');
    status.error = failureMessage(err);
    throw err;
  };

  const parsedInput = ResearchTaskInputSchema.safeParse(rawInput);
  if (!parsedInput.success) {
    const problems = inputProblems(parsedInput.error);
    fail(
      ApplicationFailure.nonRetryable(`invalid researchTask input: ${problems}`, FailureTypes.InvalidInput),
    );
  }
  const input = parsedInput.data!;
  status.question = input.question;
  status.playbook = input.playbook;
  // Task documents ride in the status (so a continued run keeps them) and in activity inputs only.
  if (input.documents?.length) status.documents = input.documents;

  let approvals: Provenance['approvals'] = [];
  let earlierRuns: string[] = [];
  let agentsByReference: boolean | undefined;
  const provenance = (snapshot: ConfigSnapshot): Provenance => ({
    ...provenanceOf(status, snapshot, { runId: info.runId, startedAt, approvals, earlierRuns }),
    ...(status.citations ? { citations: status.citations } : {}),
  });

  let run: TaskRun | undefined;
  try {
    setPhase('loading-config');
    // A task that continued as a new run (workflows/continue.ts) takes up its state, at its gate.
    let resumedAt: Gate | undefined;
    let snapshot: ConfigSnapshot;
    if (input.continued) {
      const state = await resumeTask(input.continued);
      Object.assign(status, state.status);
      ({ config: snapshot, startedAt, approvals, earlierRuns, agentsByReference } = state);
      resumedAt = status.pendingGate?.gate;
      if (!resumedAt)
        throw ApplicationFailure.nonRetryable(
          'the state read back has no open gate to wait at',
          FailureTypes.TaskStateMissing,
        );
    } else {
      snapshot = await loadConfigSnapshot(input.playbook);
      status.configDigest = snapshot.digest;
      if (snapshot.playbook.budget) status.budget = { ...snapshot.playbook.budget };
    }
    config = snapshot;
    if (snapshot.playbook.decisions === 'signed') gates.requireSignatures();
    gates.releaseDecisions();
    const taskRun = new TaskRun(status, { config: snapshot }, setPhase, agentsByReference);
    taskRun.approveToolCall = (call, subject) => gates.approveToolCall(call, subject);
    run = taskRun;
    const rejected = (): ResearchTaskResult => {
      setPhase('rejected');
      return { outcome: 'rejected', workflowId: info.workflowId, provenance: provenance(snapshot) };
    };
    /** Waits at a gate; when the history has grown long, continues as a new run waiting there. */
    const decide = async (gate: 'plan' | 'report', subject: string | undefined) => {
      for (;;) {
        const outcome = await gates.wait(gate, snapshot.gates[gate], subject, resumedAt === gate);
        if (outcome?.kind !== 'continue') {
          resumedAt = undefined;
          return outcome;
        }
        const task = {
          status,
          config: snapshot,
          startedAt,
          approvals,
          earlierRuns: [...earlierRuns, info.runId],
          agentsByReference: taskRun.agentsByReference,
        };
        await handOver(input, gates, task, gate);
        // Still here: a decision came while the state was saved, or it could not be carried.
        resumedAt = gate;
      }
    };

    let report: ArtifactRef;
    if (resumedAt === 'report') report = status.report!.artifact!;
    else {
      // v15: a task that continued as a new run at a research round's gate ran its plan already.
      const atRound = resumedAt === 'plan' && pendingRound(status) !== undefined;
      let plan = resumedAt === 'plan' ? status.plan! : await run.plan();
      while (!atRound) {
        const outcome = await decide('plan', planSubject(plan));
        if (!outcome) break;
        if (outcome.kind === 'approve') {
          approvals.push(...outcome.approvals.map((a) => ({ gate: 'plan' as const, ...a })));
          break;
        }
        if (outcome.kind === 'reject') return rejected();
        plan = await run.plan({ by: outcome.by, comment: outcome.comment });
      }
      if (!atRound) await run.execute(plan);
      if (takesRounds(snapshot)) {
        await researchRounds({
          status,
          config: snapshot,
          run: taskRun,
          setPhase,
          decide: (subject) => decide('plan', subject),
          approved: (a) => approvals.push(...a.map((x) => ({ gate: 'plan' as const, ...x }))),
        });
      }
      report = await checkedReport(status, (await run.synthesize()).report);
    }

    for (;;) {
      let draftHash: string | undefined;
      if (resumedAt === 'report') {
        // The draft was published by an earlier run, and the gate decides on it.
        draftHash = status.pendingGate?.subject;
      } else if (snapshot.gates.report.required && patched('draft-preview-before-report-gate')) {
        // v2: approvers get the draft as a labelled file to read before they decide.
        const draft = await publishReport({ report, provenance: provenance(snapshot), kind: 'draft' });
        status.report = { artifact: report, draftPath: draft.path };
        draftHash = draft.contentHash;
      }
      const outcome = await decide('report', draftHash);
      if (!outcome) break;
      if (outcome.kind === 'approve') {
        approvals.push(...outcome.approvals.map((a) => ({ gate: 'report' as const, ...a })));
        break;
      }
      if (outcome.kind === 'reject') return rejected();
      const change = { by: outcome.by, comment: outcome.comment };
      if (outcome.rerunSteps.length) await run.rerun(outcome.rerunSteps, change);
      report = await checkedReport(status, (await run.synthesize(change)).report);
    }

    setPhase('publishing');
    const final = provenance(snapshot);
    const published = await publishReport({ report, provenance: final, kind: 'final' });
    status.report = { artifact: report, path: published.path };
    setPhase('completed');
    return {
      outcome: 'completed',
      workflowId: info.workflowId,
      reportPath: published.path,
      report,
      provenance: { ...final, contentHash: published.contentHash, reportKind: 'final' },
    };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    if (!config) return fail(err);
    const snapshot = config;
    if (!isCancellation(err)) {
      // v11: a task that fails once it has work to show (a failed step, synthesis or publish)
      // publishes it as a partial report saying why, then fails. Tasks started before it failed
      // with nothing published.
      if ((status.report || status.steps.some((s) => s.result)) && patched(PARTIAL_ON_FAILURE)) {
        const reason = boundedError(failureMessage(err));
        await CancellationScope.nonCancellable(() =>
          publishPartialReport(status, () => provenance(snapshot), reason),
        ).catch((publishErr: unknown) =>
          log.error('the partial report could not be published', { error: failureMessage(publishErr) }),
        );
      }
      return fail(err);
    }
    // v4 (34afd17): a cancelled task publishes a partial report. Tasks started before it failed as
    // any error does.
    if (!patched('partial-report-on-cancel')) return fail(err);
    // Cancelled (`temporal workflow cancel`): keep what was done. Steps in flight were cancelled
    // with the task; the partial report is written in a scope the cancellation cannot reach.
    const stopped = run;
    await CancellationScope.nonCancellable(async () => {
      await stopped?.settleBatches();
      markCancelled(status);
      await publishPartialReport(status, () => provenance(snapshot), status.error!);
    });
    setPhase('cancelled');
    throw err;
  }
}

/** v11: a task that fails after work was done publishes it as a partial report. */
export const PARTIAL_ON_FAILURE = 'partial-report-on-failure';

/**
 * What a task that stops early leaves: the latest draft or report, or else the finished steps'
 * findings put together, published as a partial report whose label and provenance say why it
 * stopped (`reason`). `provenance` is made when the task stops.
 */
async function publishPartialReport(
  status: TaskStatus,
  provenance: () => Provenance,
  reason: string,
): Promise<void> {
  const done = status.steps.filter((s) => s.result);
  const report =
    status.report?.artifact ??
    (done.length > 0
      ? await assemblePartialReport({
          question: status.question,
          steps: done.map((s) => ({ id: s.id, agent: s.agent, question: s.question, result: s.result! })),
          reason,
        })
      : undefined);
  if (!report) return;
  const partial = await publishReport({
    report,
    provenance: { ...provenance(), stoppedBecause: reason },
    kind: 'partial',
  });
  status.report = { ...status.report, artifact: report, path: partial.path };
}

/**
 * One batch of a large plan's steps, whose dependencies outside the batch have finished: runs them
 * as a DAG, as a task would (agent retries, the step-failure policy, decomposition), and returns
 * every step's outcome, failed and never-started ones included, for the parent to record. Has no
 * gates and plans nothing.
 */
export async function researchBatch(input: BatchInput): Promise<BatchResult> {
  const status = childStatus(input);
  setHandler(messages.status, () => status);
  const source = await verifiedChild('researchBatch', BatchInputSchema, input).catch((err: unknown) => {
    status.phase = 'failed';
    status.error = failureMessage(err);
    throw err;
  });
  if (input.documents?.length) status.documents = input.documents;
  const run = new TaskRun(status, source);
  status.configDigest = source.config.digest;
  try {
    await run.execute({ rationale: 'A batch of a larger plan.', steps: input.steps }, input.settled);
  } catch (err) {
    // A failed step is reported to the parent with the others; anything else fails the batch, but
    // a cancelled batch returns what it finished, the steps in flight failed (v11.1).
    if (isCancellation(err) && patched(CANCEL_KEEPS_BATCH_STEPS)) markCancelled(status);
    else if (!(err instanceof ApplicationFailure) || err.type !== FailureTypes.StepFailed) throw err;
  }
  status.phase = 'completed';
  const refusals = refusalsIn(status);
  // What the parent does not know of each step: not the question or dependencies it sent (bounded
  // input: 100 steps' outcomes stay well under Temporal's 2 MB payload limit, test/bounded.test.ts).
  return {
    steps: status.steps.map(({ question: _q, dependsOn: _d, ...outcome }) => outcome),
    usage: status.usage,
    ...(refusals.length ? { refusals } : {}),
  };
}

/**
 * A child's status before its input is checked: what it says of itself, read defensively (input
 * from someone starting the child directly may have any shape; the check then refuses it).
 */
function childStatus(input: SubtaskInput | BatchInput): TaskStatus {
  const raw = (input ?? {}) as Partial<SubtaskInput>;
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  return newStatus(
    workflowInfo().workflowId,
    text(raw.question),
    text((raw.config as Partial<ConfigSnapshot> | undefined)?.playbook?.id),
    typeof raw.depth === 'number' ? raw.depth : 0,
  );
}

/** A decomposed step: plans again one level deeper, executes, and returns a sub-report. */
export async function researchSubtask(input: SubtaskInput): Promise<SubtaskResult> {
  const status = childStatus(input);
  setHandler(messages.status, () => status);
  try {
    const source = await verifiedChild('researchSubtask', SubtaskInputSchema, input);
    if (input.documents?.length) status.documents = input.documents;
    const run = new TaskRun(status, source);
    status.configDigest = source.config.digest;
    if (run.config.playbook.budget) status.budget = { ...run.config.playbook.budget };
    await run.execute(await run.plan());
    const report = await run.synthesize();
    status.phase = 'completed';
    const { sources } = boundSources(
      status.steps.flatMap((s) => s.sources ?? []).slice(0, MAX_SOURCES_PER_STEP),
    );
    const refusals = refusalsIn(status);
    const retrievedRefs = childRetrievals(status.steps);
    return {
      summary: report.summary,
      result: report.report,
      sources,
      usage: status.usage,
      ...(refusals.length ? { refusals } : {}),
      ...(retrievedRefs.length ? { retrievedRefs } : {}),
    };
  } catch (err) {
    status.phase = isCancellation(err) ? 'cancelled' : 'failed';
    status.error = failureMessage(err);
    throw err;
  }
}
