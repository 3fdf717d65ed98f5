/**
 * Human sign-off at a gate: who may decide, quorum, deadlines in durable time, escalation,
 * reminders, and the audit trail. Deterministic: workflow time only (`Date.now()` inside a
 * workflow is the time of the current workflow task), no I/O.
 *
 * Design note on decisions:
 *   1. Handlers are registered before the task's first `await`, so a decision sent right after
 *      start is never lost (it is refused: no gate is open yet).
 *   2. A decision is checked against the gate open *now* by one function, {@link Gatekeeper.check},
 *      used by the signal handlers and by the Update's validator alike, so both refuse the same
 *      things with the same words.
 *   3. A refused signal is recorded in the audit trail, bounded: by its size and hash, with
 *      clipped fields, and summed up past a cap (workflows/refusals.ts). A refused Update is
 *      answered to its caller at once; Temporal writes nothing to history for an Update its
 *      validator rejects, so those are logged by the worker instead of audited.
 *   4. The deadline policy applies only if no decision closed the gate, checked after the timer
 *      fires: a decision delivered in the same workflow task as the deadline still wins, and an
 *      accepted (audited) decision is never overridden.
 *   5. A rejection by any current approver ends the gate at once, whatever the quorum; approvals
 *      count once per person.
 */
import {
  ApplicationFailure,
  condition,
  log,
  patched,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import { type ConfigSnapshot, type ResolvedGate } from '../config/schema';
import { clip, measure } from '../contract/bounds';
import * as messages from '../contract/messages';
import {
  BATON_AWAITING,
  BATON_PENDING_GATE,
  DECISIONS,
  DecisionPayloadSchema,
  MAX_REFUSAL_REASON_CHARS,
  type Approval,
  type AuditEntry,
  type DecideResult,
  type Decision,
  type DecisionPayload,
  type Gate,
  type Phase,
  type TaskStatus,
  type ToolCallShown,
} from '../contract/messages';
import { FailureTypes } from '../contract/failures';
import { CONTINUE_AT_GATES, continueSuggested } from './continue';
import { recordRefusal, refusedEntry, sizeRefusal } from './refusals';
import { nextTimer, onTimer, openGate, reopenGate } from './gate-timers';
import { approvalOf, signatureRefusal } from './signatures';
import { now } from './status';

/** How a gate closed. */
export type GateOutcome =
  | { kind: 'approve'; approvals: Approval[] }
  | { kind: 'reject'; by: string; comment?: string }
  | { kind: 'requestChanges'; by: string; comment: string; rerunSteps: string[] };

/**
 * Who refuses a tool call that needs approval when the playbook names no approver: its plan gate
 * takes anyone (`'*'`), and a call a reviewer marked for approval is never put to whoever answers.
 */
const NO_TOOL_APPROVER =
  "Baton: the playbook names no approver (its plan gate's approvers are anyone, '*'), so no call needing approval is made";

/** The gate is still open, but the task should continue as a new run first (workflows/continue.ts). */
export interface ContinueOutcome {
  kind: 'continue';
}

/** Decisions by signal a resuming task holds, at most, until its state is back. */
const MAX_HELD_DECISIONS = 20;

/** A refused decision, as the Update's caller sees it: not retryable, since it would be refused again. */
const refused = (reason: string): ApplicationFailure =>
  ApplicationFailure.create({
    message: clip(reason, MAX_REFUSAL_REASON_CHARS),
    type: FailureTypes.DecisionRefused,
    nonRetryable: true,
  });

export class Gatekeeper {
  private outcome: GateOutcome | undefined;
  /** Whether decisions must be signed: the playbook says so, in workflow code that checks it. */
  private signed = false;
  /**
   * Decisions by signal held while the task continues as a new run (workflows/continue.ts), to be
   * taken when {@link releaseDecisions} comes; decisions by Update are asked to come again.
   * `resuming`: the new run reads its state back, which replaces the audit trail, so every
   * decision waits. `handing-over`: this run saves its state; a decision it would take waits (and
   * keeps the task in this run), one it refuses is refused at once.
   */
  private held: { while: 'resuming' | 'handing-over'; decisions: (() => void)[] } | undefined;
  /** Set when the task's state is too large to carry to a new run: it no longer hands over. */
  private staying = false;
  /** Tool calls waiting for approval, in line: one tool gate is open at a time. */
  private toolGates: Promise<void> = Promise.resolve();

  constructor(
    readonly status: TaskStatus,
    readonly setPhase: (phase: Phase) => void,
    /** The task's config once loaded (decisions arriving before are refused: no gate is open). */
    private readonly config: () => ConfigSnapshot | undefined,
  ) {}

  /**
   * Requires every decision from now on to be signed (a playbook with `decisions: signed`). v6: a
   * task started before enforcement took decisions as given, and replays as it ran.
   */
  requireSignatures(): void {
    if (patched('signed-decisions')) this.signed = true;
  }

  private get maxRevisions(): number {
    return this.config()?.playbook.limits.maxRevisions ?? 0;
  }

  audit(entry: Omit<AuditEntry, 'at'>): void {
    this.status.audit.push({ at: now(), ...entry });
  }

  /** Whom a task waits for, for `temporal workflow list --query`. */
  publish(): void {
    if (!this.config()?.searchAttributes) return;
    const open = this.status.pendingGate;
    const waitingFor = open ? open.approvers.filter((a) => !open.approvals.some((x) => x.by === a)) : [];
    upsertSearchAttributes([
      { key: BATON_PENDING_GATE, value: open?.gate ?? null },
      { key: BATON_AWAITING, value: open ? waitingFor : null },
    ]);
  }

  /**
   * Why a decision would be refused now, or undefined when it would be accepted. Pure: the Update
   * validator calls it, so it must not change anything.
   */
  check(decision: Decision, payload: unknown, passkeys: () => boolean = () => true): string | undefined {
    const parsed = DecisionPayloadSchema.safeParse(payload);
    if (!parsed.success) {
      return `malformed ${decision} payload: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'payload'}: ${i.message}`).join('; ')}`;
    }
    // v7: a passkey's assertion (the inbox) is a signature. Before, its payload did not parse.
    if (parsed.data.signature?.alg === 'webauthn' && !passkeys())
      return `malformed ${decision} payload: signature.alg: a passkey assertion, which this task's workflow code (started before passkey decisions) does not take`;
    const { by, gate, comment, rerunSteps } = parsed.data;
    const open = this.status.pendingGate;
    if (!open || this.outcome) return `no gate is pending (phase: ${this.status.phase})`;
    if (gate && gate !== open.gate)
      return `the ${gate} gate is not pending; the pending gate is ${open.gate}`;
    if (!open.approvers.includes('*') && !open.approvers.includes(by)) {
      return `"${by}" is not an approver of the ${open.gate} gate now (approvers: ${open.approvers.join(', ')})`;
    }
    if (this.signed) {
      const keys = this.config() ?? {};
      const refusal = signatureRefusal(decision, parsed.data, this.status.workflowId, open, keys);
      if (refusal !== undefined) return refusal;
    }
    if (decision === 'approve' && open.approvals.some((a) => a.by === by)) {
      return `"${by}" has already approved the ${open.gate} gate (${open.approvals.length} of ${open.quorum})`;
    }
    if (decision === 'requestChanges') {
      if (open.gate === 'tool')
        return 'a tool call is approved or rejected, never changed: approve or reject it';
      if (!comment?.trim()) return 'requestChanges needs a comment saying what to change';
      if (open.gate === 'plan' && this.config()?.playbook.fixedPlan)
        return 'this playbook fixes the plan in config; approve or reject it';
      if (this.status.revisions[open.gate] >= this.maxRevisions) {
        return `the ${open.gate} gate already had ${this.maxRevisions} revision round(s), the playbook's limit; approve or reject`;
      }
    }
    if (rerunSteps?.length) {
      if (decision !== 'requestChanges' || open.gate !== 'report')
        return 'rerunSteps goes only with requestChanges on the report';
      const unknown = rerunSteps.filter((id) => !this.status.steps.some((s) => s.id === id));
      if (unknown.length) return `rerunSteps names unknown step(s): ${unknown.join(', ')}`;
    }
    return undefined;
  }

  /** Applies a decision that {@link check} accepted. */
  private apply(decision: Decision, payload: DecisionPayload, via: 'signal' | 'update'): DecideResult {
    const open = this.status.pendingGate!;
    const at = now();
    this.audit({
      gate: open.gate,
      event: 'decision',
      decision,
      by: payload.by,
      via,
      accepted: true,
      comment: payload.comment,
      signed: this.signed,
    });
    let outcome: DecideResult['outcome'];
    if (decision === 'approve') {
      open.approvals.push(approvalOf(payload, at, this.signed, this.config() ?? {}));
      outcome = open.approvals.length >= open.quorum ? 'approved' : 'waiting';
      if (outcome === 'approved') this.outcome = { kind: 'approve', approvals: [...open.approvals] };
    } else if (decision === 'reject') {
      outcome = 'rejected';
      this.outcome = { kind: 'reject', by: payload.by, comment: payload.comment };
    } else {
      outcome = 'changes-requested';
      this.outcome = {
        kind: 'requestChanges',
        by: payload.by,
        comment: payload.comment ?? '',
        rerunSteps: payload.rerunSteps ?? [],
      };
    }
    this.publish();
    return {
      accepted: true,
      gate: open.gate,
      outcome,
      approvals: open.approvals.length,
      quorum: open.quorum,
    };
  }

  /**
   * Registers the task's handlers: the `status` and `audit` queries, a signal per decision and the
   * `decide` Update (whose validator refuses what {@link check} refuses).
   */
  handleMessages(): void {
    setHandler(messages.status, () => this.status);
    setHandler(messages.audit, () => this.status.audit);
    for (const decision of DECISIONS) {
      setHandler(messages[decision], (payload: unknown) => this.signal(decision, payload));
    }
    setHandler(messages.decide, (request) => this.update(request), {
      validator: (request) => this.validate(request),
    });
  }

  /**
   * A decision by signal: applied, or refused and recorded. Its size is checked first, before
   * anything from it is stored; a refusal keeps the payload's size and sha256 and clipped fields,
   * never the comment.
   */
  signal(decision: Decision, payload: unknown): void {
    const size = measure(payload);
    const tooLarge = sizeRefusal(size);
    const held = this.held?.decisions;
    if (this.held?.while === 'resuming') {
      // The state being read back replaces the audit trail: kept until then, within bounds.
      if (tooLarge === undefined && held!.length < MAX_HELD_DECISIONS)
        held!.push(() => this.signal(decision, payload));
      else {
        const reason =
          tooLarge ??
          `more than ${MAX_HELD_DECISIONS} decisions arrived while the task was reading its state back`;
        const entry = refusedEntry(decision, payload, reason, size, null);
        held!.push(() => recordRefusal(this.status.audit, entry));
      }
      return;
    }
    // v5: an oversized payload is refused before it is parsed. Before, one within the schema's
    // limits (a long comment in multi-byte characters) could be accepted: replayed as it ran.
    // v7: a passkey decision by signal is taken only by a task whose history says so (the
    // `decide` Update's validator never replays: it takes one whenever it runs).
    const refusal =
      tooLarge !== undefined && patched('bounded-decisions')
        ? tooLarge
        : this.check(decision, payload, () => patched('passkey-decisions'));
    if (refusal === undefined && held) {
      // Checked again when taken: other decisions held before it may change the answer.
      held.push(() => this.signal(decision, payload));
      return;
    }
    if (refusal === undefined) {
      this.apply(decision, DecisionPayloadSchema.parse(payload), 'signal');
      return;
    }
    const entry = refusedEntry(decision, payload, refusal, size, this.status.pendingGate?.gate ?? null);
    recordRefusal(this.status.audit, entry);
    log.warn('decision refused', { decision, reason: clip(refusal, MAX_REFUSAL_REASON_CHARS) });
  }

  /**
   * Decisions wait until {@link releaseDecisions}: in a run that continued from another, before its
   * first await (`resuming`: the state read back holds the gate they are for), and while this run
   * saves its state to continue (`handing-over`).
   */
  holdDecisions(during: 'resuming' | 'handing-over'): void {
    this.held = { while: during, decisions: [] };
  }

  /** Whether a decision is held that this run would take: then it does not continue as a new run. */
  holdsDecisions(): boolean {
    return (this.held?.decisions.length ?? 0) > 0;
  }

  /** Held decisions are taken, in the order they came. */
  releaseDecisions(): void {
    const held = this.held?.decisions ?? [];
    this.held = undefined;
    for (const take of held) take();
  }

  /** The Update's validator: throws the refusal, which fails the Update for its caller. */
  validate(request: unknown): void {
    // Nothing of a refused Update is stored (Temporal records only accepted ones): its size first.
    const tooLarge = sizeRefusal(measure(request));
    if (tooLarge !== undefined) {
      log.warn('decision refused', { reason: tooLarge, via: 'update' });
      throw refused(tooLarge);
    }
    if (this.held)
      throw refused(
        'the task is continuing as a new run (its history grew long): send the decision again in a moment',
      );
    const { decision, ...payload } = (request ?? {}) as { decision?: unknown };
    if (decision !== 'approve' && decision !== 'reject' && decision !== 'requestChanges') {
      throw refused('malformed decide request: decision must be "approve", "reject" or "requestChanges"');
    }
    const refusal = this.check(decision, payload);
    if (refusal !== undefined) {
      log.warn('decision refused', {
        decision,
        reason: clip(refusal, MAX_REFUSAL_REASON_CHARS),
        via: 'update',
      });
      throw refused(refusal);
    }
  }

  /** The Update's handler, after the validator accepted. */
  update(request: { decision: Decision } & DecisionPayload): DecideResult {
    const { decision, ...payload } = request;
    return this.apply(decision, DecisionPayloadSchema.parse(payload), 'update');
  }

  /**
   * Opens the gate and waits, in durable time, for its outcome: quorum reached, a rejection, a
   * change request, or the deadline policy. Returns undefined when the gate is not required.
   * Reminders and the deadline are timers raced against a decision ({@link onTimer} says what a
   * timer that won means); the loop's awaits are all here, so a decision resumes the task at once.
   */
  async wait(
    gate: Gate,
    config: ResolvedGate,
    subject?: string,
    resumed = false,
    call?: ToolCallShown,
  ): Promise<GateOutcome | ContinueOutcome | undefined> {
    if (!config.required) return undefined;
    if (!resumed) this.outcome = undefined;
    const waiting = resumed
      ? reopenGate(this, gate, config)
      : openGate(this, gate, config, subject, this.signed, call);
    // v13: when the server suggests it, the task continues as a new run (workflows/continue.ts);
    // never from a tool gate, whose step is in flight.
    const mayContinue = gate !== 'tool' && patched(CONTINUE_AT_GATES) && !this.staying;
    const decided = (): boolean => this.outcome !== undefined || (mayContinue && continueSuggested());
    while (!this.outcome) {
      const { reminder, wakeAt, summary } = nextTimer(waiting);
      // Awaited as the code before v13 awaited them: one more promise step here would reorder this
      // workflow task's commands against an Update completing in it.
      let woken = true;
      if (wakeAt === Infinity) await condition(decided);
      else woken = await condition(decided, Math.max(1, wakeAt - Date.now()), { summary });
      // A decision applied in the same workflow task as a timer or the suggestion wins: a decision
      // accepted (and audited) is never overridden by the deadline policy, nor kept waiting.
      if (this.outcome) break;
      if (woken) return { kind: 'continue' };
      this.outcome = onTimer(this, waiting, reminder);
    }
    return this.close(gate);
  }

  /**
   * A tool call that needs a person's approval (docs/tools.md, "Approving a tool call"): waits at
   * the `tool` gate, one call at a time (steps in parallel queue here), showing the call in status;
   * `subject` hashes it whole. The gate takes the plan gate's approvers and quorum, required, with
   * no deadline: a call is never made by default. A playbook whose plan gate takes anyone (`'*'`,
   * also when it has no plan gate) names nobody for it: the call is refused at once, no gate opens.
   */
  approveToolCall(call: ToolCallShown, subject: string): Promise<GateOutcome> {
    const { approvers, quorum } = this.config()!.gates.plan;
    if (approvers.includes('*')) return Promise.resolve({ kind: 'reject', by: NO_TOOL_APPROVER });
    const config: ResolvedGate = { required: true, approvers, quorum, onDeadline: 'reject', reminders: [] };
    const turn = this.toolGates.then(
      async () => (await this.wait('tool', config, subject, false, call)) as GateOutcome,
    );
    this.toolGates = turn.then(
      () => undefined,
      () => undefined,
    );
    return turn;
  }

  /** The task's state is too large to carry to a new run: it waits on in this one. */
  stayInThisRun(): void {
    this.staying = true;
  }

  /** Closes the gate on its outcome: audited, a change request counted, no longer pending. */
  private close(gate: Gate): GateOutcome {
    // Set by a handler or by the deadline policy (TypeScript cannot see the handlers).
    const outcome = this.outcome as GateOutcome;
    this.audit({ gate, event: 'gate-closed', via: 'system', reason: outcome.kind });
    if (outcome.kind === 'requestChanges' && gate !== 'tool') this.status.revisions[gate]++;
    this.status.pendingGate = undefined;
    this.publish();
    return outcome;
  }
}
