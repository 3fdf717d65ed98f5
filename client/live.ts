/**
 * The live words of a task's model calls in flight (contract/live.ts): from the pending activities
 * the server describes for the task (and for the children of its running steps), their last
 * heartbeat's details decoded with the client's data converter (so encrypted ones open with the
 * key the CLI already has). Needs only the server, never a worker.
 */
import type { Client } from '@temporalio/client';
import { liveWordsOf, type LiveWords } from '../contract/live';
import { firstPayloadValue } from './drafts';

/** The live words of the model calls running now in these workflows (a task, its running children). */
export async function liveWordsIn(client: Client, workflowIds: readonly string[]): Promise<LiveWords[]> {
  const converter = client.options.loadedDataConverter;
  const described = await Promise.all(
    workflowIds.map((id) =>
      client.workflow
        .getHandle(id)
        .describe()
        .then((d) => d.raw.pendingActivities ?? [])
        .catch(() => []),
    ),
  );
  const words = await Promise.all(
    described.flat().map(async (activity) => {
      const details = await firstPayloadValue(converter, activity.heartbeatDetails?.payloads).catch(
        () => undefined,
      );
      return liveWordsOf(details);
    }),
  );
  return words.filter((w): w is LiveWords => w !== undefined);
}
