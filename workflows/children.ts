/**
 * What a child workflow checks before it runs (v8, `children-verify-snapshot`; docs/security.md,
 * "Children verify what they are given"): its input's shape and sizes (contract/children.ts), then
 * its config snapshot, by the worker (`checkSnapshot`), before any model call. It then runs with the
 * snapshot narrowed by its parent's bounds. Children started before v8 took their config as given.
 */
import { ApplicationFailure, executeChild, patched, workflowInfo } from '@temporalio/workflow';
import type { ZodType } from 'zod';
import type { ConfigSnapshot } from '../config/schema';
import { inputProblems, type ChildBounds } from '../contract/children';
import { MAX_CHILD_RETRIEVAL_RECORDS } from '../contract/citations';
import { FailureTypes } from '../contract/failures';
import type { StepResult } from '../contract/activities';
import type { ChangeRequest, StepStatus, TaskStatus } from '../contract/messages';
import { checkSnapshot, childSummary } from './calls';
import type { researchSubtask } from './research';
import { mergeUsage } from './status';
import { documentsOf } from './documents';

/** The marker of v8: parents give children the sealed snapshot and bounds; children check them. */
export const CHILDREN_VERIFY = 'children-verify-snapshot';

/** What a child runs with: the snapshot as given, and the parent's bounds (absent before v8). */
export interface ChildSource {
  config: ConfigSnapshot;
  bounds?: ChildBounds;
}

/**
 * Checks a child's input (new children; those that ran before v8 replay without): refused with a
 * non-retryable failure naming what is wrong, before anything from it is used.
 */
export async function verifiedChild(
  workflow: string,
  schema: ZodType,
  input: ChildSource,
): Promise<ChildSource> {
  if (!patched(CHILDREN_VERIFY)) return { config: input.config };
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid ${workflow} input: ${inputProblems(parsed.error)}`,
      FailureTypes.InvalidInput,
    );
  }
  await checkSnapshot(input.config);
  return { config: input.config, bounds: input.bounds ?? {} };
}

/**
 * A decomposed step, run as a `researchSubtask` child one level deeper with `given` (the sealed
 * snapshot and its bounds since v8): its outcome, its usage and refusals merged into the parent's.
 * A re-run gets its own child id: the first child is kept as it was, for the record.
 */
export async function runChildStep(
  status: TaskStatus,
  step: StepStatus,
  given: ChildSource,
  change: ChangeRequest | undefined,
): Promise<Omit<StepResult, 'model'>> {
  step.childWorkflowId = `${workflowInfo().workflowId}/step-${step.id}${step.revision ? `/rev-${step.revision}` : ''}${(step.attempt ?? 1) > 1 ? `/attempt-${step.attempt}` : ''}`;
  const question = change ? `${step.question}\n\nReviewer's request: ${change.comment}` : step.question;
  // By its type's name: research.ts, which defines the workflow, imports task-run.ts, which imports this.
  const child = await executeChild<typeof researchSubtask>('researchSubtask', {
    workflowId: step.childWorkflowId,
    args: [{ question, depth: status.depth + 1, ...given, ...documentsOf(status) }],
    ...childSummary(step, question, status.depth + 1),
  });
  mergeUsage(status.usage, child.usage);
  for (const entry of child.refusals ?? []) {
    status.audit.push({ ...entry, step: entry.step ? `${step.id}/${entry.step}` : step.id });
  }
  step.usage = { inputTokens: child.usage.inputTokens, outputTokens: child.usage.outputTokens };
  // Its steps' retrieval records (since v16), for the citation pass: the child's, bounded again here.
  const retrievedRefs = (child.retrievedRefs ?? []).slice(0, MAX_CHILD_RETRIEVAL_RECORDS);
  if (retrievedRefs.length) step.retrievedRefs = retrievedRefs;
  else delete step.retrievedRefs;
  return { summary: child.summary, sources: child.sources, result: child.result, usage: step.usage };
}
