/**
 * What a child workflow checks before it runs (v8, `children-verify-snapshot`; docs/security.md,
 * "Children verify what they are given"): its input's shape and sizes (contract/children.ts), then
 * its config snapshot, by the worker (`checkSnapshot`), before any model call. It then runs with the
 * snapshot narrowed by its parent's bounds. Children started before v8 took their config as given.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import type { ZodType } from 'zod';
import type { ConfigSnapshot } from '../config/schema';
import { inputProblems, type ChildBounds } from '../contract/children';
import { FailureTypes } from '../contract/failures';
import { checkSnapshot } from './calls';

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
