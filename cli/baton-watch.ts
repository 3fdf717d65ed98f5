/**
 * `npm run baton -- watch <workflow id>`: follows a task until it closes, as `npm start` does (a live
 * frame on a terminal, plain lines otherwise, with the running steps' live words), and says how it
 * ended and where its report is.
 */
import { WorkflowFailedError } from '@temporalio/client';
import type { TaskEnd } from '../client';
import { shownLocation } from '../activities/report';
import type { CliDeps } from './baton';
import { followTask, messageOf } from './follow';
import { createView } from './live';

/** How often `watch` asks the task for its status. */
const WATCH_POLL_MS = 1000;

/**
 * Follows a task until it closes: a live frame on a terminal, plain lines otherwise (cli/live.ts).
 * Prints the outcome and where the report is; 0 when the task completed, 1 when it was rejected,
 * failed, was cancelled, terminated or timed out.
 */
export async function watch(deps: CliDeps, workflowId: string): Promise<number> {
  const view = createView({
    terminal: deps.terminal,
    print: deps.out,
    gate: true,
    restoreOnExit: deps.terminal === process.stdout,
  });
  let end: TaskEnd;
  try {
    end = await followTask(deps.client, workflowId, view, {
      pollMs: deps.pollMs ?? WATCH_POLL_MS,
      workerTimeoutMs: deps.workerTimeoutMs,
      onUnanswered: ({ error, first, last }) => {
        // The first answer says whether a worker serves the task at all (as `show` does); a closed
        // task's status needs a worker to replay it, but without one the outcome still says it all.
        if (first && !last) throw error;
        view.note(
          last
            ? `no last status: ${messageOf(error)}`
            : `the task does not answer: ${messageOf(error)}; retrying`,
        );
      },
    });
  } finally {
    view.close();
  }
  if ('error' in end) {
    const status = await deps.client.workflow
      .getHandle(workflowId)
      .describe()
      .then(
        (d) => d.status.name.toLowerCase().replace('_', ' '),
        () => 'failed',
      );
    const why =
      end.error instanceof WorkflowFailedError
        ? (end.error.cause?.message ?? end.error.message)
        : messageOf(end.error);
    deps.err(`outcome: ${status}: ${why}`);
    return 1;
  }
  const result = (end.value ?? {}) as { outcome?: string; reportPath?: string };
  if (result.outcome === 'rejected') {
    deps.out('outcome: rejected; no report was published');
    return 1;
  }
  deps.out(`outcome: ${result.outcome ?? 'completed'}`);
  if (result.reportPath) deps.out(`Report: ${shownLocation(result.reportPath)}`);
  return 0;
}
