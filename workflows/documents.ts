/**
 * A task's documents (docs/tools.md, "Documents") as workflows pass them on: by reference, in the
 * inputs of the activities that call models and of the children that run steps. Absent without
 * documents, so that every other input, and every command, is as before.
 */
import type { TaskDocument, TaskStatus } from '../contract/messages';

/** `{ documents }` to spread into an input, or nothing when the task has none. */
export const documentsOf = (status: Pick<TaskStatus, 'documents'>): { documents?: TaskDocument[] } =>
  status.documents?.length ? { documents: status.documents } : {};
