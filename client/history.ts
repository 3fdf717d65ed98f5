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

/** What a local activity left in history (bookkeeping since v18, workflows/calls.ts). */
export interface LocalActivityRecord {
  /** The activity's type, e.g. `publishReport`. */
  type: string;
  /** Its result, encoded as the worker wrote it (payload encryption included); none when it failed. */
  result: temporal.api.common.v1.IPayload[] | null | undefined;
}

/**
 * The local activity `event` records, or undefined when it is not a local activity's marker: a
 * local activity leaves one `MarkerRecorded` event (`core_local_activity`) with its type and result,
 * never its input. `decode` reads a payload list's first value with the client's data converter.
 */
export async function localActivityIn(
  event: HistoryEvent,
  decode: (payloads: temporal.api.common.v1.IPayload[] | null | undefined) => Promise<unknown>,
): Promise<LocalActivityRecord | undefined> {
  const marker = event.markerRecordedEventAttributes;
  if (marker?.markerName !== 'core_local_activity') return undefined;
  const data = (await decode(marker.details?.data?.payloads)) as { activity_type?: unknown } | undefined;
  return {
    type: typeof data?.activity_type === 'string' ? data.activity_type : '',
    result: marker.failure ? undefined : marker.details?.result?.payloads,
  };
}
