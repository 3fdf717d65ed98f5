/**
 * A task's event history across its runs: a task continues as a new run while it waits long at a
 * gate (workflows/continue.ts), and the server links each run to the one it continued from.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

/** Most runs of one task read back: a task that waited for months at a gate, continuing every few thousand events. */
const MAX_RUNS = 1000;

/**
 * The events of every run of the task, one list a run, oldest first: `handle`'s run (its latest
 * when `handle` names none), and the runs it continued from (a task continues as a new run while
 * it waits at a gate: workflows/continue.ts), as the server links them.
 */
export async function runsOf(client: Client, handle: WorkflowHandle): Promise<HistoryEvent[][]> {
  const runs: HistoryEvent[][] = [];
  let run: WorkflowHandle = handle;
  for (let i = 0; i < MAX_RUNS; i++) {
    const events = (await run.fetchHistory()).events ?? [];
    runs.unshift(events);
    const earlier = events[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId;
    if (!earlier) break;
    run = client.workflow.getHandle(handle.workflowId, earlier);
  }
  return runs;
}
