/**
 * Following a task until it closes: one poll loop, for `npm start` and `npm run baton -- watch`.
 * It asks the task's status every `pollMs` (at once when the task closes), and yields each answer,
 * or the error when the task's worker did not answer, then how the task ended.
 */
import type { Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskStatus } from '../contract/messages';
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
