/**
 * Following a task until it closes: one poll loop, for `npm start` and `npm run baton -- watch`.
 * It asks the task's status every `pollMs` (at once when the task closes), and yields each answer,
 * or the error when the task's worker did not answer, then how the task ended. The live words of
 * its model calls in flight are read apart ({@link liveWordsEvery}), less often.
 */
import type { Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LiveWords } from '../contract/live';
import type { TaskStatus } from '../contract/messages';
import { liveWordsIn } from './live';
import { DEFAULT_WORKER_TIMEOUT_MS, queryStatus } from './status';

/** How a task ended: its result, or the error `handle.result()` threw (failed, cancelled…). */
export type TaskEnd = { value: unknown } | { error: unknown };

/** `first`: the first poll; `last`: the poll after the task closed, the final status. */
export type WatchEvent =
  | { kind: 'status'; status: TaskStatus; first: boolean; last: boolean }
  | { kind: 'unanswered'; error: unknown; first: boolean; last: boolean }
  | { kind: 'closed'; end: TaskEnd };

export interface WatchOptions {
  /** How often to ask the task for its status. */
  pollMs: number;
  /** How long each status query waits for a worker; default {@link DEFAULT_WORKER_TIMEOUT_MS}. */
  workerTimeoutMs?: number;
}

/**
 * Polls the task until it closes, yielding what each poll found, and ends with its outcome. An
 * unknown workflow id throws `WorkflowNotFoundError` before anything is yielded.
 */
export async function* watchTask(
  client: Client,
  workflowId: string,
  options: WatchOptions,
): AsyncGenerator<WatchEvent, void, undefined> {
  const handle = client.workflow.getHandle(workflowId);
  let closed = (await handle.describe()).status.name !== 'RUNNING';
  // A closed task's status needs a worker to replay it, and its outcome does not: wait less for one.
  const timeoutMs = Math.min(options.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS, closed ? 5000 : Infinity);
  const ended: Promise<TaskEnd> = handle.result().then(
    (value: unknown) => ({ value }),
    (error: unknown) => ({ error }),
  );
  void ended.then(() => (closed = true));
  for (let first = true; ; first = false) {
    const last = closed;
    const event: WatchEvent = await queryStatus(client, workflowId, timeoutMs).then(
      (status) => ({ kind: 'status', status, first, last }),
      (error: unknown) => ({ kind: 'unanswered', error, first, last }),
    );
    yield event;
    if (last) break;
    await Promise.race([ended, sleep(options.pollMs)]);
  }
  yield { kind: 'closed', end: await ended };
}

/** How often, at most, a live view asks the server for the live words of the calls in flight. */
export const LIVE_WORDS_POLL_MS = 1000;

/**
 * A reader of live words (client/live.ts) by workflow id, throttled: it asks the server (one
 * `describe` per workflow) at most every `everyMs`, and answers the last words read in between.
 * A workflow the server does not describe has none.
 */
export function liveWordsEvery(
  client: Client,
  everyMs = LIVE_WORDS_POLL_MS,
): (workflowIds: readonly string[]) => Promise<ReadonlyMap<string, LiveWords[]>> {
  let last = new Map<string, LiveWords[]>();
  let askedAt = -Infinity;
  return async (workflowIds) => {
    if (!workflowIds.length) return new Map();
    if (Date.now() - askedAt < everyMs) return new Map(workflowIds.map((id) => [id, last.get(id) ?? []]));
    askedAt = Date.now();
    const read = await Promise.all(workflowIds.map((id) => liveWordsIn(client, [id])));
    last = new Map(workflowIds.map((id, i) => [id, read[i]!]));
    return last;
  };
}
