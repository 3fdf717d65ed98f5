/**
 * Synthesis that fits the lead's context window (docs/architecture.md, "Synthesis"). The report is
 * written in one call when the finished steps fit in it; otherwise hierarchically: the lead
 * summarizes groups of steps (one activity per group, each summary an artifact that keeps the
 * steps' [step:<id>] citations), then writes the report from the summaries, summarizing the
 * summaries again while they are too many or too long. Grouping is deterministic: contiguous runs
 * of the plan's steps, split evenly.
 *
 * A group is too long when the lead's activity refuses it with `ContextTooLong` (its count of the
 * prompt against `contextTokens`, or the API's own 400): the group is split further, as the count
 * says or in two, down to single steps. Only a single step (or summary) that alone does not fit
 * fails the synthesis.
 */
import { ActivityFailure, ApplicationFailure, patched } from '@temporalio/workflow';
import {
  STEPS_PER_SYNTHESIS,
  type GivenAgent,
  type SummaryResult,
  type SynthesisInput,
  type SynthesisPart,
  type SynthesisResult,
  type SynthesisStep,
} from '../contract/activities';
import type { AgentConfig } from '../config/schema';
import { FailureTypes } from '../contract/failures';
import type { ChangeRequest, TaskStatus } from '../contract/messages';
import { summarizeSteps, synthesizeReport } from './calls';

/** v10: synthesis measured against the lead's context window, in parts when it does not fit. */
export const SYNTHESIS_FITS = 'synthesis-fits-context';

/** What a refusal for context length says: the prompt's size and the room, when counted. */
interface ContextRefusal {
  inputTokens?: number;
  contextTokens?: number;
  maxTokens?: number;
}

/** What one summary reads: a group of steps, or of parts (one of the two is empty). */
interface Material {
  steps: SynthesisStep[];
  parts: SynthesisPart[];
}

/** The refusal inside a failed activity when the lead's context was too small for it. */
function contextRefusal(err: unknown): ContextRefusal | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  if (!(cause instanceof ApplicationFailure) || cause.type !== FailureTypes.ContextTooLong) return undefined;
  const details = cause.details?.[0];
  return details && typeof details === 'object' ? details : {};
}

/** Into how many groups `n` items go after a refusal: as many as the count says would fit, at least two. */
function piecesAfter(refusal: ContextRefusal, n: number): number {
  const { inputTokens, contextTokens, maxTokens } = refusal;
  const room = contextTokens !== undefined && maxTokens !== undefined ? contextTokens - maxTokens : 0;
  const wanted = inputTokens !== undefined && room > 0 ? Math.ceil(inputTokens / room) : 2;
  return Math.min(n, Math.max(2, wanted));
}

/** `items` in `k` contiguous groups whose sizes differ by at most one. */
function split<T>(items: T[], k: number): T[][] {
  const groups: T[][] = [];
  for (let i = 0, start = 0; i < k; i++) {
    const size = Math.floor(items.length / k) + (i < items.length % k ? 1 : 0);
    groups.push(items.slice(start, start + size));
    start += size;
  }
  return groups.filter((g) => g.length > 0);
}

const splitMaterial = ({ steps, parts }: Material, k: number): Material[] =>
  steps.length
    ? split(steps, k).map((g) => ({ steps: g, parts: [] }))
    : split(parts, k).map((g) => ({ steps: [], parts: g }));

/**
 * What the synthesis of a task needs of it: the lead (its config: the activities' timeouts and
 * retry policy; the input gives it by reference or inline), the playbook's `maxParallel`, and
 * where usage goes.
 */
export interface SynthesisRun {
  lead: AgentConfig;
  maxParallel: number;
  /** Records a call's usage and refused tool calls in the task's status. */
  account(result: SummaryResult | SynthesisResult): void;
}

/**
 * The report: in one call when the steps are few enough and fit (a task started before v10 always
 * tries so), otherwise in parts. The caller accounts for the final call's usage.
 */
export async function synthesize(run: SynthesisRun, input: SynthesisInput): Promise<SynthesisResult> {
  if (input.steps.length > STEPS_PER_SYNTHESIS && patched(SYNTHESIS_FITS)) {
    return inParts(run, input, Math.ceil(input.steps.length / STEPS_PER_SYNTHESIS));
  }
  try {
    return await synthesizeReport(run.lead, input);
  } catch (err) {
    const refusal = contextRefusal(err);
    if (!refusal || input.steps.length < 2 || !patched(SYNTHESIS_FITS)) throw err;
    return inParts(run, input, piecesAfter(refusal, input.steps.length));
  }
}

/** The report from summaries of the steps in `groups` groups, summarized again until they fit. */
async function inParts(run: SynthesisRun, input: SynthesisInput, groups: number): Promise<SynthesisResult> {
  let parts = await summarizeAll(run, input, splitMaterial({ steps: input.steps, parts: [] }, groups));
  for (;;) {
    let next = Math.ceil(parts.length / STEPS_PER_SYNTHESIS);
    if (parts.length <= STEPS_PER_SYNTHESIS) {
      try {
        return await synthesizeReport(run.lead, { ...input, steps: [], parts });
      } catch (err) {
        const refusal = contextRefusal(err);
        if (!refusal || parts.length < 2) throw err;
        next = Math.min(parts.length - 1, piecesAfter(refusal, parts.length));
      }
    }
    const fewer = await summarizeAll(run, input, splitMaterial({ steps: [], parts }, next));
    if (fewer.length >= parts.length) {
      throw ApplicationFailure.nonRetryable(
        `synthesis by "${run.lead.id}": ${parts.length} summaries of the steps do not fit its context window together, and summarizing them does not make them fewer; raise contextTokens (if the model allows) or lower maxTokens for "${run.lead.id}"`,
        FailureTypes.ContextTooLong,
      );
    }
    parts = fewer;
  }
}

/** Summaries of every group, at most `maxParallel` at once, in plan order. */
async function summarizeAll(
  run: SynthesisRun,
  input: SynthesisInput,
  groups: Material[],
): Promise<SynthesisPart[]> {
  const parts: SynthesisPart[][] = [];
  for (let i = 0; i < groups.length; i += run.maxParallel) {
    parts.push(
      ...(await Promise.all(
        groups.slice(i, i + run.maxParallel).map((g) => summarizeFitting(run, input, g)),
      )),
    );
  }
  return parts.flat();
}

/** The summary of a group, or of its pieces when it does not fit the lead's context. */
async function summarizeFitting(
  run: SynthesisRun,
  input: SynthesisInput,
  group: Material,
): Promise<SynthesisPart[]> {
  try {
    const result = await summarizeSteps(run.lead, {
      question: input.question,
      lead: input.lead,
      steps: group.steps,
      parts: group.parts,
    });
    run.account(result);
    return [result.part];
  } catch (err) {
    const refusal = contextRefusal(err);
    const size = group.steps.length + group.parts.length;
    if (!refusal || size < 2) throw err;
    return summarizeAll(run, input, splitMaterial(group, piecesAfter(refusal, size)));
  }
}

/**
 * What the lead synthesizes from: the finished steps (v12: a specialist's step gives its sources by
 * reference when the run gives agents by reference; a decomposed step's, and every step's before
 * v12, inline), and the skipped steps with why.
 */
export function synthesisInputOf(
  status: TaskStatus,
  lead: GivenAgent,
  byReference: boolean,
  change: ChangeRequest | undefined,
): SynthesisInput {
  return {
    question: status.question,
    lead,
    steps: status.steps.flatMap((s) =>
      s.result
        ? [
            {
              id: s.id,
              agent: s.agent,
              question: s.question,
              result: s.result,
              ...(byReference && s.sourcesRef ? { sourcesRef: s.sourcesRef } : { sources: s.sources ?? [] }),
            },
          ]
        : [],
    ),
    skipped: status.steps
      .filter((s) => s.state === 'skipped')
      .map((s) => ({ id: s.id, agent: s.agent, question: s.question, reason: s.error ?? 'failed' })),
    change,
  };
}
