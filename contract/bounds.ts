/**
 * Measuring and clipping what enters a task, so that nothing anyone sends or any model answers can
 * push a payload past Temporal's limits (2 MB a payload, 50 MB a history by default). Pure and
 * workflow-safe: `TextEncoder` is a global in Node and in the workflow sandbox, and the hash is
 * @noble/hashes (no Node modules). docs/security.md ("Bounded input") lists the limits.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';

const utf8 = new TextEncoder();

/** The UTF-8 size of a value's JSON, as Temporal's JSON payload converter carries it. */
export const jsonBytes = (value: unknown): number => utf8.encode(JSON.stringify(value) ?? 'null').length;

/** A payload as the audit trail keeps a refused one: its JSON's size in UTF-8 bytes and its sha256. */
export interface Measured {
  bytes: number;
  sha256: string;
}

/**
 * The size and hash of a payload's JSON (UTF-8), or undefined when it has none: nested too deeply
 * for `JSON.stringify`.
 */
export function measure(value: unknown): Measured | undefined {
  let text: string;
  try {
    text = JSON.stringify(value) ?? 'null';
  } catch {
    return undefined;
  }
  const data = utf8.encode(text);
  return { bytes: data.length, sha256: `sha256:${bytesToHex(sha256(data))}` };
}

/** Text cut to at most `max` UTF-16 units, an ellipsis marking the cut. */
export const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;

/** Text cut so that its JSON string weighs at most `maxBytes` of UTF-8, an ellipsis marking the cut. */
export function clipBytes(text: string, maxBytes: number): string {
  if (jsonBytes(text) <= maxBytes) return text;
  let used = jsonBytes('…');
  let end = 0;
  for (const char of text) {
    const bytes = jsonBytes(char) - 2;
    if (used + bytes > maxBytes) break;
    used += bytes;
    end += char.length;
  }
  return `${text.slice(0, end)}…`;
}

/**
 * Caps on what a plan and a child workflow's input may hold (schemas: config/plan.ts,
 * contract/children.ts). A parent sends a batch child at most {@link STEPS_PER_RUN} steps, each
 * naming at most `MAX_DEPENDS_ON` (config/plan.ts) dependencies, and the settled steps they depend on: at
 * most {@link MAX_SETTLED_STEPS}. The caps keep a batch's input under Temporal's 2 MB payload limit
 * at the schemas' worst, and refuse larger input from anyone starting a child directly.
 */
/** Most steps one workflow run executes itself; a larger plan runs in `researchBatch` children. */
export const STEPS_PER_RUN = 100;
/**
 * Most settled steps a batch child is given (the dependencies of its steps outside the batch): a
 * plan's most steps (`limits.maxSteps` is at most 1000). A parent sends them without their questions.
 */
export const MAX_SETTLED_STEPS = 1000;
/** Longest question a child task takes: a step's question and a reviewer's request (10,000). */
export const MAX_CHILD_QUESTION_CHARS = 16_000;
/** Most problems a model's invalid answer is reported with, and the bytes each keeps. */
export const MAX_ANSWER_PROBLEMS = 20;
export const MAX_ANSWER_PROBLEM_BYTES = 500;

/**
 * A model's invalid-answer problems (schema issues, its refusal text) within the caps: at most
 * {@link MAX_ANSWER_PROBLEMS}, each clipped to {@link MAX_ANSWER_PROBLEM_BYTES}, and a last line
 * counting the rest. They enter history, the audit trail and the next prompt.
 */
export function boundProblems(problems: readonly string[]): string[] {
  const kept = problems.slice(0, MAX_ANSWER_PROBLEMS).map((p) => clipBytes(p, MAX_ANSWER_PROBLEM_BYTES));
  const more = problems.length - kept.length;
  return more > 0 ? [...kept, `… and ${more} more problem${more === 1 ? '' : 's'}`] : kept;
}
