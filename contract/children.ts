/**
 * What a child workflow (`researchSubtask`, `researchBatch`) is given, and how it checks it
 * (docs/security.md, "Children verify what they are given").
 *
 * A child takes its parent's config snapshot unchanged, as the worker that loaded it sealed it
 * (`seal`: an Ed25519 signature over {@link sealedText}), plus {@link ChildBounds}: what the parent
 * narrows for it (its token budget, its share of `maxParallel`, its share of `maxTotalSteps`). The
 * child has the snapshot checked (the `checkSnapshot` activity) before any model call, and applies
 * the bounds with {@link narrowConfig}, which can only lower what the snapshot allows: someone who
 * starts a child directly can neither change the snapshot nor widen it.
 *
 * Pure and workflow-safe.
 */
import { z } from 'zod';
import { PlanStepSchema, type ConfigSnapshot } from '../config/schema';
import { canonicalJson } from './canonical';
import { MAX_CHILD_QUESTION_CHARS, MAX_SETTLED_STEPS, STEPS_PER_RUN } from './bounds';
import { MAX_TASK_DOCUMENTS, TaskDocumentSchema } from './messages';

/** What the worker's seal on a snapshot covers: this line, then the snapshot's canonical JSON without `seal`. */
export const SNAPSHOT_SEAL_DOMAIN = 'baton-snapshot-v1\n';

/** The text a snapshot's seal signs. */
export const sealedText = (snapshot: ConfigSnapshot): string =>
  SNAPSHOT_SEAL_DOMAIN + canonicalJson({ ...snapshot, seal: undefined });

/** What a parent narrows of the snapshot for a child. Each field only ever lowers the snapshot's own. */
export const ChildBoundsSchema = z
  .object({
    maxParallel: z.number().int().min(1).max(256).optional(),
    maxTokensPerTask: z.number().int().min(0).max(1e9).optional(),
    maxTokensPerStep: z.number().int().min(1).max(1e8).optional(),
    /** The steps the child's work may hold in all, its own plan's (or batch's) steps included. */
    maxTotalSteps: z.number().int().min(0).max(1_000_000).optional(),
  })
  .strict();
export type ChildBounds = z.infer<typeof ChildBoundsSchema>;

const min = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);

/** The snapshot as a child runs it: `bounds` applied, never above what the snapshot allows. */
export function narrowConfig(config: ConfigSnapshot, bounds: ChildBounds = {}): ConfigSnapshot {
  const { playbook } = config;
  const budget = {
    maxTokensPerTask: min(playbook.budget?.maxTokensPerTask, bounds.maxTokensPerTask),
    maxTokensPerStep: min(playbook.budget?.maxTokensPerStep, bounds.maxTokensPerStep),
  };
  const limits = {
    ...playbook.limits,
    maxParallel: min(playbook.limits.maxParallel, bounds.maxParallel)!,
    maxTotalSteps: min(playbook.limits.maxTotalSteps, bounds.maxTotalSteps)!,
  };
  return {
    ...config,
    playbook: {
      ...playbook,
      limits,
      budget:
        budget.maxTokensPerTask === undefined && budget.maxTokensPerStep === undefined ? undefined : budget,
    },
  };
}

/**
 * The shape of a snapshot as far as a child reads it before `checkSnapshot` has vouched for the
 * rest: the activity compares the whole of it with what the worker sealed or would load.
 */
const SnapshotShapeSchema = z
  .object({
    digest: z.string().regex(/^sha256:[0-9a-f]{64}$/, 'must be "sha256:" and 64 hex digits'),
    playbook: z.looseObject({ id: z.string().max(40) }),
  })
  .loose();

const childInput = {
  question: z.string().min(1).max(MAX_CHILD_QUESTION_CHARS),
  depth: z.number().int().min(0).max(3),
  config: SnapshotShapeSchema,
  bounds: ChildBoundsSchema.optional(),
  /** The task's documents, by reference (docs/tools.md, "Documents"). */
  documents: z.array(TaskDocumentSchema).max(MAX_TASK_DOCUMENTS).optional(),
};

/** A `researchSubtask`'s input, checked before anything from it is used. */
export const SubtaskInputSchema = z.object(childInput).strict();

/** A settled step a batch's steps depend on: what the batch reads of it (its state and result). */
const SettledStepSchema = PlanStepSchema.extend({
  question: z.string().max(2000),
  state: z.enum(['pending', 'running', 'done', 'failed', 'skipped']),
  result: z
    .object({ id: z.string().max(100), bytes: z.number().int().min(0) })
    .strict()
    .optional(),
}).strict();

/** A `researchBatch`'s input, checked before anything from it is used. */
export const BatchInputSchema = z
  .object({
    ...childInput,
    steps: z.array(PlanStepSchema).min(1).max(STEPS_PER_RUN),
    settled: z.array(SettledStepSchema).max(MAX_SETTLED_STEPS),
  })
  .strict();

/** Problems in a child's input, one per line, naming where: `settled: too big: …`. */
export const inputProblems = (error: z.ZodError): string =>
  error.issues
    .slice(0, 10)
    .map((i) => `${i.path.join('.') || 'input'}: ${i.message}`)
    .join('; ');
