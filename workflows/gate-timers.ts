/**
 * One opening of a gate and its timers: opened (or, after a continue-as-new, reopened as the state
 * holds it), reminders due, the deadline, escalation and the deadline policy. Used by the
 * Gatekeeper (./gates.ts), which races these timers against decisions. Deterministic: workflow time
 * only.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { durationMs, type ResolvedGate } from '../config/schema';
import { FailureTypes } from '../contract/failures';
import type { AuditEntry, Gate, PendingGate, Phase, TaskStatus, ToolCallShown } from '../contract/messages';
import type { GateOutcome } from './gates';
import { nextInstance } from './signatures';
import { now } from './status';

/** A reminder of an open gate: when it is due, and its label (the duration after opening, as configured). */
export interface Reminder {
  at: number;
  label: string;
}

/** A gate being waited on: the gate, its config, what status shows of it, and when timers are due. */
export interface Waiting {
  gate: Gate;
  config: ResolvedGate;
  open: PendingGate;
  /** Workflow time (ms) of the current deadline; escalation moves it. */
  deadlineAt: number | undefined;
  reminders: Reminder[];
}

/** What the timers change: the task's status and audit trail, its phase, its search attributes. */
export interface GateContext {
  status: TaskStatus;
  audit(entry: Omit<AuditEntry, 'at'>): void;
  setPhase(phase: Phase): void;
  publish(): void;
}

const awaiting = (gate: Exclude<Gate, 'tool'>): Phase =>
  gate === 'plan' ? 'awaiting-plan-approval' : 'awaiting-report-approval';

const remindersOf = (config: ResolvedGate, openedAt: number): Reminder[] =>
  config.reminders.map((r) => ({ at: openedAt + durationMs(r), label: String(r) }));

/**
 * Opens the gate: pending in status (with its instance and `subject`, what it decides on, and at
 * the tool gate the call), audited and published, with its reminders and deadline. A tool gate
 * leaves the phase as it is: the task is executing, other steps go on.
 */
export function openGate(
  ctx: GateContext,
  gate: Gate,
  config: ResolvedGate,
  subject: string | undefined,
  signed: boolean,
  call?: ToolCallShown,
): Waiting {
  if (gate !== 'tool') ctx.setPhase(awaiting(gate));
  const openedAt = Date.now();
  const deadlineAt = config.deadline ? openedAt + durationMs(config.deadline) : undefined;
  const open: PendingGate = {
    gate,
    since: now(),
    stage: 'primary',
    approvers: config.approvers,
    quorum: config.quorum,
    approvals: [],
    deadline: deadlineAt === undefined ? undefined : new Date(deadlineAt).toISOString(),
    reminders: [],
    instance: nextInstance(ctx.status.audit),
    subject,
    signed,
    ...(call ? { call } : {}),
  };
  ctx.status.pendingGate = open;
  ctx.audit({
    gate,
    event: 'gate-opened',
    via: 'system',
    reason: `waiting for ${config.quorum} of: ${config.approvers.join(', ')}`,
  });
  ctx.publish();
  return { gate, config, open, deadlineAt, reminders: remindersOf(config, openedAt) };
}

/**
 * The gate a task that continued as a new run was waiting at, as its state holds it (opened by an
 * earlier run): same instance, approvals, reminders sent, stage and deadline; nothing audited.
 */
export function reopenGate(ctx: GateContext, gate: Gate, config: ResolvedGate): Waiting {
  const open = ctx.status.pendingGate;
  if (open?.gate !== gate)
    throw ApplicationFailure.nonRetryable(
      `the state read back has no open ${gate} gate (pending: ${open?.gate ?? 'none'})`,
      FailureTypes.TaskStateMissing,
    );
  if (gate !== 'tool') ctx.setPhase(awaiting(gate));
  ctx.publish();
  return {
    gate,
    config,
    open,
    deadlineAt: open.deadline === undefined ? undefined : Date.parse(open.deadline),
    reminders: remindersOf(config, Date.parse(open.since)),
  };
}

/**
 * The next reminder not yet sent, when the next timer is due (Infinity: none), and what the Temporal
 * Web UI shows of that timer (`plan gate · reminder 1d`, `plan gate · deadline: escalate to leads`).
 * A timer's summary is user metadata: replay does not compare it.
 */
export function nextTimer(waiting: Waiting): {
  reminder: Reminder | undefined;
  wakeAt: number;
  summary: string;
} {
  const { gate, config, open, deadlineAt } = waiting;
  const reminder = waiting.reminders.find((r) => !open.reminders.includes(r.label));
  const wakeAt = Math.min(reminder?.at ?? Infinity, deadlineAt ?? Infinity);
  if (reminder && reminder.at < (deadlineAt ?? Infinity))
    return { reminder, wakeAt, summary: `${gate} gate · reminder ${reminder.label} after opening` };
  const policy = open.stage === 'escalated' ? config.escalation?.onDeadline : config.onDeadline;
  const then =
    policy === 'escalate' && config.escalation
      ? `escalate to ${config.escalation.approvers.join(', ')}`
      : (policy ?? 'reject');
  const stage = open.stage === 'escalated' ? 'escalation deadline' : 'deadline';
  return { reminder, wakeAt, summary: `${gate} gate · ${stage} ${open.deadline ?? ''}: ${then}` };
}

/**
 * A timer fired with no decision: a reminder is due, or the deadline passed (escalation, or the
 * policy's outcome, returned).
 */
export function onTimer(
  ctx: GateContext,
  waiting: Waiting,
  reminder: Reminder | undefined,
): GateOutcome | undefined {
  const { gate, open, deadlineAt, config } = waiting;
  if (reminder && reminder.at <= Date.now() && reminder.at < (deadlineAt ?? Infinity)) {
    open.reminders.push(reminder.label);
    ctx.audit({
      gate,
      event: 'reminder',
      via: 'system',
      reason: `${reminder.label} after opening; still waiting for ${open.approvers.join(', ')}`,
    });
    return undefined;
  }
  const escalation =
    open.stage === 'primary' && config.onDeadline === 'escalate' ? config.escalation : undefined;
  if (!escalation) return deadlinePolicy(ctx, waiting);
  escalate(ctx, waiting, escalation);
  return undefined;
}

/** The primary approvers' deadline passed: the escalation approvers decide, by a new deadline. */
function escalate(
  ctx: GateContext,
  waiting: Waiting,
  escalation: NonNullable<ResolvedGate['escalation']>,
): void {
  const { gate, config, open } = waiting;
  waiting.deadlineAt = Date.now() + durationMs(escalation.deadline);
  open.stage = 'escalated';
  open.approvers = escalation.approvers;
  open.quorum = escalation.quorum;
  open.deadline = new Date(waiting.deadlineAt).toISOString();
  ctx.audit({
    gate,
    event: 'escalated',
    via: 'system',
    reason: `deadline ${config.deadline} passed; now waiting for ${escalation.quorum} of: ${escalation.approvers.join(', ')}`,
  });
  ctx.publish();
}

/** The last deadline passed with no decision: the policy decides (auto-approve or reject). */
function deadlinePolicy(ctx: GateContext, { gate, config, open }: Waiting): GateOutcome {
  const policy = open.stage === 'escalated' ? config.escalation!.onDeadline : config.onDeadline;
  ctx.audit({
    gate,
    event: 'deadline',
    via: 'system',
    by: 'system',
    reason: `no decision by ${open.deadline}; policy: ${policy}`,
  });
  return policy === 'auto-approve'
    ? {
        kind: 'approve',
        approvals: [{ by: 'system (auto-approve)', at: now(), comment: `deadline passed; policy ${policy}` }],
      }
    : { kind: 'reject', by: 'system', comment: 'deadline passed' };
}
