/**
 * Starting a research task as `npm start` does: a business id, and the metadata the Temporal Web UI
 * and `temporal workflow describe` show for it.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { createHash } from 'node:crypto';
import type { ResearchTaskInput, ResearchTaskResult, TaskDocument } from '../contract/messages';
import { summaryLine } from '../lib/text';

/** The research workflow's type, as the worker registers it (workflows/research.ts, `researchTask`). */
export type ResearchTask = (input: ResearchTaskInput) => Promise<ResearchTaskResult>;

/**
 * A business id: a slug of the question, the date and a short hash of the question, e.g.
 * `research-how-do-solid-state-2026-11-24-3f2a9c1e`. The slug keeps ASCII letters and digits only,
 * accents dropped (safe in a shell, a file name and a terminal), so questions in other scripts, or differing only in
 * punctuation, would share it: the hash (sha256 of the trimmed question in Unicode NFC, 8 hex
 * digits) keeps their ids apart. Documents given with the question (their content hashes, in order) are
 * hashed with it, so the same question about other documents is another task; without documents the
 * id is what it always was.
 */
export function workflowIdFor(
  question: string,
  date: Date,
  documents: readonly Pick<TaskDocument, 'ref'>[] = [],
): string {
  const slug = question
    .normalize('NFKD')
    .replace(/\p{M}/gu, '') // accents off: "Café" and "Cafe\u0301" are both "cafe"
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .split('-')
    .slice(0, 6)
    .join('-');
  const hashed = createHash('sha256').update(question.trim().normalize('NFC'), 'utf8');
  for (const { ref } of documents) hashed.update(`\u0000${ref.id}`, 'utf8');
  const hash = hashed.digest('hex');
  return `research-${slug || 'task'}-${date.toISOString().slice(0, 10)}-${hash.slice(0, 8)}`;
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
  /** Start it even when a completed task has this id (a new run beside the old one). */
  rerun?: boolean;
  /** Documents the question comes with, already in the artifact store (activities/documents.ts). */
  documents?: TaskDocument[];
}

/**
 * Starts a research task; throws `WorkflowExecutionAlreadyStartedError` when the id is taken by a
 * running task, or by a completed one unless `rerun` (docs/operations.md, "Workflow ids"): a task
 * that completed holds a signed-off report or a rejection, and is never silently started again.
 * A task that failed, was cancelled, terminated or timed out may be started again under its id.
 */
export function startResearchTask(
  client: Client,
  options: StartTaskOptions,
): Promise<WorkflowHandle<ResearchTask>> {
  const { taskQueue, workflowId, question, playbook, by, rerun, documents } = options;
  return client.workflow.start<ResearchTask>('researchTask', {
    taskQueue,
    workflowId,
    args: [{ question, playbook, ...(documents?.length ? { documents } : {}) }],
    workflowIdReusePolicy: rerun ? 'ALLOW_DUPLICATE' : 'ALLOW_DUPLICATE_FAILED_ONLY',
    ...taskMetadata(question, playbook, by),
  });
}
