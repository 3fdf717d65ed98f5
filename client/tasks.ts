/**
 * Starting a research task as `npm start` does: a business id, and the metadata the Temporal Web UI
 * and `temporal workflow describe` show for it.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { ResearchTaskInput, ResearchTaskResult } from '../contract/messages';
import { summaryLine } from '../lib/text';

/** The research workflow's type, as the worker registers it (workflows/research.ts, `researchTask`). */
export type ResearchTask = (input: ResearchTaskInput) => Promise<ResearchTaskResult>;

/** A business id: a slug of the question and the date, e.g. `research-how-do-solid-state-2026-11-24`. */
export function workflowIdFor(question: string, date: Date): string {
  const slug = question
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .split('-')
    .slice(0, 6)
    .join('-');
  return `research-${slug || 'task'}-${date.toISOString().slice(0, 10)}`;
}

/**
 * What the Temporal Web UI and `temporal workflow describe` show for a task started here: its
 * question as the one-line summary (clipped to 200 characters), the whole question and the
 * playbook as the details (Temporal markdown).
 */
export function taskMetadata(
  question: string,
  playbook: string,
  by: string,
): { staticSummary: string; staticDetails: string } {
  return {
    staticSummary: summaryLine(question),
    staticDetails: `**Question:** ${question}\n\n**Playbook:** ${playbook} · started with \`npm start\` by ${by}`,
  };
}

export interface StartTaskOptions {
  taskQueue: string;
  workflowId: string;
  question: string;
  playbook: string;
  /** Who starts it, shown in the task's details. */
  by: string;
}

/** Starts a research task; throws `WorkflowExecutionAlreadyStartedError` when the id is taken by a running task. */
export function startResearchTask(
  client: Client,
  options: StartTaskOptions,
): Promise<WorkflowHandle<ResearchTask>> {
  const { taskQueue, workflowId, question, playbook, by } = options;
  return client.workflow.start<ResearchTask>('researchTask', {
    taskQueue,
    workflowId,
    args: [{ question, playbook }],
    ...taskMetadata(question, playbook, by),
  });
}
