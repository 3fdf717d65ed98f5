/**
 * What every config file shares: ids, durations, and the way a path into a file is written and
 * pointed at.
 */
import type { Duration as TemporalDuration } from '@temporalio/common';
import { z } from 'zod';

/** An id of an agent, a playbook or a group of approvers. */
export const IdSchema = z
  .string()
  .regex(
    /^[a-z][a-z0-9-]{0,39}$/,
    'must be lower-case letters, digits and dashes, starting with a letter (at most 40)',
  );

/** A duration as Temporal accepts it: a number and a unit, e.g. `500ms`, `30s`, `10m`, `2h`, `3d`. */
export const DurationSchema = z
  .string()
  .regex(/^\d+(ms|s|m|h|d)$/, 'must be a whole number followed by ms, s, m, h or d, e.g. "30s" or "10m"')
  // The regex admits only strings Temporal's Duration type accepts; the cast tells TypeScript so.
  .transform((s) => s as TemporalDuration);

/** Milliseconds in a duration from config (a {@link DurationSchema} string, or milliseconds). */
export function durationMs(duration: TemporalDuration): number {
  if (typeof duration === 'number') return duration;
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(duration);
  if (!match) throw new Error(`not a duration: "${duration}"`);
  const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  return Number(match[1]) * units[match[2] as keyof typeof units];
}

/** A path into a parsed file, as zod reports it: `['agents', 2, 'retry']`. */
export type ConfigPath = readonly PropertyKey[];

/**
 * A problem a rule found that zod cannot express: the sentence people read, and the path of the
 * node it is about (the loader turns that path into a line and column of the file).
 */
export interface Finding {
  at: ConfigPath;
  message: string;
}

/** A zod issue path rendered the way people read it: `agents[2].retry.maximumAttempts`. */
export function formatPath(path: ConfigPath): string {
  return path
    .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
    .join('');
}
