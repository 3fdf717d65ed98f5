/**
 * A plan too large for one workflow run's history runs in batches: the scheduler
 * (workflows/scheduler.ts) hands out batches of steps instead of single steps, each run by a
 * `researchBatch` child with its own history (docs/architecture.md, "Child workflows and batches").
 *
 * A batch is the ready steps, then the pending steps that need only them (or steps settled
 * already), up to {@link STEPS_PER_RUN}; at most {@link BATCHES_IN_FLIGHT} batches run at once, and
 * each takes what is left of `maxParallel`, up to its size, so the steps in flight never exceed it.
 * This run's history holds a few events per batch instead of several per step. Step states here
 * change when a batch finishes; each batch child's `status` query shows its steps live.
 */
import { executeChild, patched, workflowInfo } from '@temporalio/workflow';

/**
 * v11.1: a cancelled batch child returns the outcome of its steps (the finished ones with their
 * results) instead of failing, and its cancelled parent waits for the batches in flight before it
 * publishes its partial report, so no finished step is lost. Before, both dropped them.
 */
export const CANCEL_KEEPS_BATCH_STEPS = 'cancel-keeps-batch-steps';
import { boundedError } from '../contract/activities';
import { STEPS_PER_RUN } from '../contract/bounds';
import type { BatchResult, StepStatus, TaskStatus } from '../contract/messages';
import type { ConfigSnapshot } from '../config/schema';
import type { ChildSource } from './children';
import type { Unit, Work } from './scheduler';
import { failureMessage } from '../contract/failures';
import { mergeUsage, now } from './status';
import { documentsOf } from './documents';
import type { researchBatch } from './research';

/**
 * Most steps one workflow run executes itself (contract/bounds.ts). A larger plan runs in
 * `researchBatch` children, so no run's history nears Temporal's warning size (10,240 events or
 * 10 MB by default): about four events per step for inline steps, a handful per batch for the parent.
 */
export { STEPS_PER_RUN };
/** Batch children of one task running at once; `maxParallel` is shared between them. */
const BATCHES_IN_FLIGHT = 4;

/** A batch: its steps, and the share of `maxParallel` it was given. */
interface Batch extends Unit {
  slots: number;
}

/**
 * A batch: the ready steps, then pending steps whose dependencies are all settled or in the batch
 * (the child runs them in order), up to {@link STEPS_PER_RUN}.
 */
function batchOf(ready: StepStatus[], steps: StepStatus[], isSettled: (id: string) => boolean): StepStatus[] {
  const batch = ready.slice(0, STEPS_PER_RUN);
  const inBatch = new Set(batch.map((s) => s.id));
  for (let grew = true; grew && batch.length < STEPS_PER_RUN;) {
    grew = false;
    for (const step of steps) {
      if (batch.length >= STEPS_PER_RUN) break;
      if (step.state !== 'pending' || inBatch.has(step.id)) continue;
      if (!step.dependsOn.every((id) => inBatch.has(id) || isSettled(id))) continue;
      batch.push(step);
      inBatch.add(step.id);
      grew = true;
    }
  }
  return batch;
}

/** Batches of `steps` as the scheduler's units of work, each run by a `researchBatch` child. */
export function inBatches(
  status: TaskStatus,
  config: ConfigSnapshot,
  steps: StepStatus[],
  byId: Map<string, StepStatus>,
  given: (slots: number, batch: StepStatus[]) => ChildSource,
): Work<Batch, BatchResult> & { inFlight(): number } {
  const { maxParallel } = config.playbook.limits;
  // v4 (28af961): batches take what is left of maxParallel, so a wide fan-out runs in one wave.
  // Tasks started before it gave each batch an equal share and started batches regardless of slots.
  const shareSlots = patched('batches-share-max-parallel');
  const perBatch = Math.max(1, Math.floor(maxParallel / BATCHES_IN_FLIGHT));
  let slotsInUse = 0;
  let batches = 0;
  let running = 0;
  return {
    /** Batch children started and not yet settled (their outcome recorded). */
    inFlight: () => running,
    hasRoom: (inFlight) => inFlight < BATCHES_IN_FLIGHT && (!shareSlots || slotsInUse < maxParallel),
    take(ready, isSettled) {
      const batch = batchOf(ready, steps, isSettled);
      // The steps in flight across all batches never exceed maxParallel (before v4: a fixed share).
      const slots = shareSlots ? Math.min(batch.length, maxParallel - slotsInUse) : perBatch;
      slotsInUse += slots;
      return { steps: batch, slots };
    },
    start({ steps: batch, slots }) {
      batches++;
      running++;
      for (const step of batch) Object.assign(step, { state: 'running', startedAt: now() });
      const inBatch = new Set(batch.map((s) => s.id));
      const source = given(slots, batch);
      // What the batch needs of the steps it depends on: their state and result (skipped ones too);
      // since v8 (bounds given) not their questions, which a batch never reads.
      const context = [...new Set(batch.flatMap((s) => s.dependsOn))]
        .filter((id) => !inBatch.has(id))
        .map((id) => {
          const { agent, question, state, result } = byId.get(id)!;
          const asked = source.bounds ? '' : question;
          return { id, agent, question: asked, dependsOn: [], decompose: false, state, result };
        });
      // By its type's name: research.ts, which defines the workflow, imports the scheduler's users.
      return executeChild<typeof researchBatch>('researchBatch', {
        workflowId: `${workflowInfo().workflowId}/batch-${batches}`,
        args: [
          {
            question: status.question,
            depth: status.depth,
            ...source,
            ...documentsOf(status),
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
      });
    },
    succeeded(_batch, result) {
      mergeUsage(status.usage, result.usage);
      status.audit.push(...(result.refusals ?? []));
      let failed: StepStatus | undefined;
      for (const done of result.steps) {
        const step = byId.get(done.id)!;
        Object.assign(step, done);
        if (step.state === 'failed') failed ??= step;
      }
      return failed;
    },
    failed({ steps: batch }, err) {
      // The batch itself failed (not one of its steps): its unfinished steps fail with it.
      for (const step of batch) {
        if (step.state === 'running')
          Object.assign(step, { state: 'failed', error: boundedError(failureMessage(err)) });
      }
      return batch.find((s) => s.state === 'failed');
    },
    release({ steps: batch, slots }) {
      for (const step of batch) step.finishedAt ??= now();
      slotsInUse -= slots;
      running--;
    },
  };
}
