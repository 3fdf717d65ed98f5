/**
 * Following a task in a live view until it closes: the loop of `npm start` and `npm run baton --
 * watch`. The polling is the client's (client/watch.ts); this adds the statuses of decomposed
 * steps' child tasks and the live words of the model calls in flight, and draws each answer
 * (cli/live.ts).
 */
import type { Client } from '@temporalio/client';
import {
  liveWordsEvery,
  queryStatus,
  watchTask,
  type TaskEnd,
  type WatchEvent,
  type WatchOptions,
} from '../client';
import type { TaskStatus } from '../contract/messages';
import { childStatuses, openWorkflows, type View } from './live';

export interface FollowOptions extends WatchOptions {
  /** After each status but the last is drawn, e.g. to decide at a gate. */
  onStatus?: (status: TaskStatus) => Promise<void>;
  /** When the task's worker did not answer a poll; may throw to stop following. */
  onUnanswered: (event: Extract<WatchEvent, { kind: 'unanswered' }>) => void;
}

/** Draws the task's statuses in `view` until it closes; answers how it ended. */
export async function followTask(
  client: Client,
  workflowId: string,
  view: View,
  options: FollowOptions,
): Promise<TaskEnd> {
  const ask = (id: string): Promise<TaskStatus> => queryStatus(client, id, options.workerTimeoutMs);
  let children = new Map<string, TaskStatus>();
  // The words of the model calls in flight: read from the server apart from the status, throttled.
  const liveWords = liveWordsEvery(client);
  for await (const event of watchTask(client, workflowId, options)) {
    if (event.kind === 'closed') return event.end;
    if (event.kind === 'unanswered') {
      options.onUnanswered(event);
      continue;
    }
    children = await childStatuses(event.status, ask, children);
    view.update(event.status, children, await liveWords(openWorkflows(event.status, children)));
    if (!event.last) await options.onStatus?.(event.status);
  }
  throw new Error(`watching task ${workflowId} ended without its outcome`);
}

/** An error's message, or the value as text. */
export const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));
