/**
 * Continue-as-new at a gate (docs/architecture.md, "Long waits at a gate"). A task can wait at a
 * gate for weeks: reminders, escalations and every decision sent to it (refused ones included)
 * add events to its history. When the server suggests it (`continueAsNewSuggested`, well before
 * Temporal's history warning), the gate hands over: the task saves its state to the store in parts
 * (the `saveTaskState` activity, keyed by this run and the state's hash) and continues as a new run
 * with the same workflow id, whose input says only how many parts there are and their hash. The new
 * run reads the parts back under the run it continued from, which the server names, checks the
 * hash, and waits at the same gate opening: same instance, approvals so far, reminders sent and
 * deadline.
 *
 * No decision is lost on the way: while the state is saved, a decision the gate would take is held,
 * and keeps the task in this run (it is taken, and the task hands over later, if it still must);
 * while the new run reads its state back, decisions by signal wait for it. Decisions by Update in
 * either window are refused with "send again in a moment".
 *
 * Deterministic: the state is the workflow's own, and the hash is computed in workflow code.
 */
import {
  ApplicationFailure,
  continueAsNew,
  log,
  proxyActivities,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import type { ConfigSnapshot } from '../config/schema';
import { failureMessage, FailureTypes } from '../contract/failures';
import {
  MAX_STATE_PARTS,
  type AuditEntry,
  type Gate,
  type Provenance,
  type ResearchTaskInput,
  type TaskStatus,
} from '../contract/messages';
import { STATE_PART_CHARS, type TaskStateActivities } from '../contract/task-state';
import type { Gatekeeper } from './gates';
import type { researchTask } from './research';
import { now } from './status';

/** v13: a task waiting at a gate continues as a new run when the server suggests it. */
export const CONTINUE_AT_GATES = 'continue-as-new-at-gates';

/**
 * v17: a continued run holds decisions from its first workflow task. A decision that came as the
 * run started is dispatched as soon as its handler is set, which was before the hold: it was
 * refused for want of a gate, when it was for the gate the state read back reopens.
 */
export const HOLD_FROM_FIRST_TASK = 'hold-decisions-from-first-task';

/** What a task carries to its next run: everything its report and its gates need. */
export interface TaskState {
  status: TaskStatus;
  config: ConfigSnapshot;
  startedAt: string;
  approvals: Provenance['approvals'];
  /** Every run before the next one, oldest first (this one included). */
  earlierRuns: string[];
  /**
   * Whether the task gives model activities their agent by reference (v12): a task whose first run
   * loaded its snapshot before then has none stored, and keeps giving agents inline.
   */
  agentsByReference: boolean;
}

const state = proxyActivities<TaskStateActivities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1s', maximumAttempts: 5 },
});

const summary = (text: string): ActivityOptions => ({ summary: text });

const hashOf = (text: string): string => `sha256:${bytesToHex(sha256(utf8ToBytes(text)))}`;

/**
 * `text` in parts of at most {@link STATE_PART_CHARS} characters, never cut inside a surrogate pair
 * (each part is stored as UTF-8 on its own, where half a pair would not survive).
 */
export function partsOf(text: string): string[] {
  const parts: string[] = [];
  for (let at = 0; at < text.length;) {
    let end = Math.min(at + STATE_PART_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    parts.push(text.slice(at, end));
    at = end;
  }
  return parts;
}

/** Whether the server suggests continuing as a new run (its history is getting long). */
export const continueSuggested = (): boolean => workflowInfo().continueAsNewSuggested;

/**
 * Saves the task's state and continues as a new run of the same task, waiting at `gate`; never
 * returns then (the `ContinueAsNew` it throws ends this run). Returns, for the task to wait on in
 * this run at the same opening, when a decision came while the state was saved (taken now), or
 * when the state cannot be carried (too large, or the store failed: the task then stays in this run
 * for good, and says why in its log).
 */
export async function handOver(
  input: ResearchTaskInput,
  gates: Gatekeeper,
  task: TaskState,
  gate: Gate,
): Promise<void> {
  const { historyLength, historySize } = workflowInfo();
  const entry: AuditEntry = {
    at: now(),
    gate,
    event: 'continued-as-new',
    via: 'system',
    reason: `history at ${historyLength} events, ${historySize} bytes: the gate stays open in a new run of the task`,
  };
  task.status.audit.push(entry);
  const text = JSON.stringify(task);
  const parts = partsOf(text);
  const hash = hashOf(text);
  let saved = false;
  if (parts.length > MAX_STATE_PARTS)
    log.warn('the task state is too large to continue as a new run; it waits on in this run', {
      chars: text.length,
    });
  else {
    gates.holdDecisions('handing-over');
    try {
      await Promise.all(
        parts.map((part, index) =>
          state.saveTaskState.executeWithOptions(
            summary(`continue-as-new · save state ${index + 1}/${parts.length}`),
            [{ state: hash, part: index, text: part }],
          ),
        ),
      );
      saved = true;
    } catch (err) {
      log.warn('the task state could not be saved; it waits on in this run', { error: failureMessage(err) });
    }
  }
  if (saved && !gates.holdsDecisions()) {
    return continueAsNew<typeof researchTask>({
      question: input.question,
      playbook: input.playbook,
      continued: { parts: parts.length, sha256: hash },
    });
  }
  task.status.audit.splice(task.status.audit.indexOf(entry), 1);
  if (!saved) gates.stayInThisRun();
  gates.releaseDecisions();
}

/** Reads back the state the run this one continued from saved, and checks it against `continued`. */
export async function resumeTask(continued: NonNullable<ResearchTaskInput['continued']>): Promise<TaskState> {
  const run = workflowInfo().continuedFromExecutionRunId;
  if (!run)
    throw ApplicationFailure.nonRetryable(
      'invalid researchTask input: continued: is set only by a task continuing as a new run, and this run was not continued from one',
      FailureTypes.InvalidInput,
    );
  const parts = await Promise.all(
    Array.from({ length: continued.parts }, (_, part) =>
      state.loadTaskState.executeWithOptions(
        summary(`continue-as-new · read state ${part + 1}/${continued.parts}`),
        [{ run, state: continued.sha256, part }],
      ),
    ),
  );
  const text = parts.join('');
  if (hashOf(text) !== continued.sha256)
    throw ApplicationFailure.nonRetryable(
      `the state run ${run} saved does not match the hash it continued with (${continued.sha256}): changed in the store`,
      FailureTypes.TaskStateMissing,
    );
  return JSON.parse(text) as TaskState;
}
