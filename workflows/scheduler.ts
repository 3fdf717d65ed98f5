/**
 * The one DAG scheduler: runs a plan's steps so that a step starts only when every step it depends
 * on is settled (done, or skipped by the step-failure policy), as many at once as the kind of work
 * allows, until nothing more can start and nothing is in flight.
 *
 * What one unit of work is, is the caller's: a single step run in this workflow (`TaskRun`), or a
 * batch of steps run by a `researchBatch` child (workflows/batches.ts). The loop is the same:
 *
 *   1. While no step has failed the task, the budget has not stopped scheduling and the kind of
 *      work has room: take the ready steps (in plan order); if there are none, stop looking; if
 *      one more step could exceed the token budget, stop scheduling for good (workflows/budget.ts);
 *      else hand the ready steps to the work, which makes a unit of some of them, and start it.
 *   2. Wait (a durable condition) until some unit settles, and go again; done when none is in flight.
 *
 * Units start in plan order within one workflow activation. After a step fails the task, no new
 * unit starts; those in flight finish. Deterministic: no I/O, workflow time only.
 */
import { condition } from '@temporalio/workflow';
import type { StepStatus } from '../contract/messages';
import type { Budget } from './budget';

/** A unit of work: the steps it runs, and whatever else its kind keeps about it. */
export interface Unit {
  steps: StepStatus[];
}

/** A kind of work the scheduler hands out: how a unit is made, started and recorded. */
export interface Work<U extends Unit, R> {
  /** Whether another unit may start now, with `inFlight` units running. */
  hasRoom(inFlight: number): boolean;
  /** Makes the next unit from the ready steps (plan order, at least one). */
  take(ready: StepStatus[], isSettled: (id: string) => boolean): U;
  /** Marks the unit's steps running and starts it; the promise settles when the unit has. */
  start(unit: U): Promise<R>;
  /** Records what a unit returned in its steps; returns a step that fails the task, if any. */
  succeeded(unit: U, result: R): StepStatus | undefined;
  /** Records a unit that failed; returns the step that fails the task, if any. */
  failed(unit: U, err: unknown): StepStatus | undefined;
  /** After the unit settled either way: its steps' finish time, and what it held. */
  release(unit: U): void;
}

/**
 * Runs `steps` as a DAG, unit by unit, and returns the first step that failed the task, if any.
 * `byId` also holds steps settled elsewhere (a batch child's dependencies outside its batch).
 */
export async function runDag<U extends Unit, R>(
  steps: StepStatus[],
  byId: Map<string, StepStatus>,
  budget: Budget,
  work: Work<U, R>,
): Promise<StepStatus | undefined> {
  const isSettled = (id: string): boolean => ['done', 'skipped'].includes(byId.get(id)?.state ?? '');
  let inFlight = 0;
  let stepsInFlight = 0;
  let settled = 0;
  let failed: StepStatus | undefined;
  for (;;) {
    while (!failed && !budget.stopped && work.hasRoom(inFlight)) {
      const ready = steps.filter((s) => s.state === 'pending' && s.dependsOn.every(isSettled));
      if (ready.length === 0) break;
      if (budget.overBudget(stepsInFlight)) {
        budget.stop();
        break;
      }
      const unit = work.take(ready, isSettled);
      inFlight++;
      stepsInFlight += unit.steps.length;
      work
        .start(unit)
        .then(
          (result) => {
            const failing = work.succeeded(unit, result);
            failed ??= failing;
          },
          (err: unknown) => {
            const failing = work.failed(unit, err);
            failed ??= failing;
          },
        )
        .finally(() => {
          work.release(unit);
          inFlight--;
          stepsInFlight -= unit.steps.length;
          settled++;
        });
    }
    if (inFlight === 0) break;
    const before = settled;
    await condition(() => settled > before);
  }
  return failed;
}
