/**
 * What changed between the versions a reviewer is shown: the drafts of a report and the plans of a
 * task, as the task's event history records them, and the differences between two of them.
 *
 * Drafts are content-addressed artifacts (activities/artifacts.ts), so the history holds only their
 * references: each `publishReport` of a draft names the body the report gate showed, in its input
 * (since v18, a local activity: in its result; tasks from before drafts were published: each
 * `synthesizeReport` result). Plans are the valid `planTask` results, one per opening of the plan
 * gate; a task that continued as a new run while it waited (workflows/continue.ts) has them in the
 * runs before. The previous version is the one the gate showed before the current one: the version
 * the reviewer who asked for changes last saw. Reading the history needs only the server, and its
 * payloads are decoded with the client's data converter (with payload encryption on, they read as
 * the worker wrote them). The texts themselves are read by the caller from the store (the inbox,
 * `npm run baton -- show --diff`).
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import { arrayFromPayloads, type LoadedDataConverter, type Payload } from '@temporalio/common';
import { diffLines, diffWordsWithSpace } from 'diff';
import type { Plan, PlanStep } from '../config/schema';
import type { PublishInput, PublishResult, SynthesisResult, PlanTaskResult } from '../contract/activities';
import type { ArtifactRef } from '../contract/messages';
import { localActivityIn, runsOf } from './history';

/** The versions a task's history records, oldest first. */
export interface Versions {
  /** The draft bodies the report gate showed (or, for older tasks, each synthesis). */
  drafts: ArtifactRef[];
  /** The valid plans the lead proposed, one per opening of the plan gate. */
  plans: Plan[];
}

/** The first value of a payload list, decoded as the worker encoded it (codecs run last to first). */
export async function firstPayloadValue(
  converter: LoadedDataConverter,
  payloads: Payload[] | null | undefined,
): Promise<unknown> {
  if (!payloads?.length) return undefined;
  let decoded = payloads;
  for (const codec of [...converter.payloadCodecs].reverse()) decoded = await codec.decode(decoded);
  return arrayFromPayloads(converter.payloadConverter, decoded)[0];
}

/**
 * Reads the task's drafts and plans from its event history: its latest run and the runs it continued
 * from, as the server links them, oldest first (the server alone answers).
 */
export async function versionsOf(client: Client, workflowId: string): Promise<Versions> {
  const runs: Versions[] = [];
  const synthesizedRuns: ArtifactRef[][] = [];
  for (const events of await runsOf(client, client.workflow.getHandle(workflowId))) {
    const run = await versionsIn(client.options.loadedDataConverter, events);
    runs.push({ drafts: run.published, plans: run.plans });
    synthesizedRuns.push(run.synthesized);
  }
  const published = runs.flatMap((r) => r.drafts);
  return {
    drafts: published.length ? published : synthesizedRuns.flat(),
    plans: runs.flatMap((r) => r.plans),
  };
}

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];

/** The drafts published, the reports synthesized and the valid plans of one run's events. */
async function versionsIn(
  converter: LoadedDataConverter,
  events: HistoryEvent[],
): Promise<{ published: ArtifactRef[]; synthesized: ArtifactRef[]; plans: Plan[] }> {
  const scheduled = new Map<string, string>();
  const published: ArtifactRef[] = [];
  const synthesized: ArtifactRef[] = [];
  const plans: Plan[] = [];
  const decode = (payloads: Payload[] | null | undefined) => firstPayloadValue(converter, payloads);
  for (const event of events) {
    const local = await localActivityIn(event, decode);
    if (local?.type === 'publishReport') {
      const result = (await decode(local.result)) as PublishResult | undefined;
      if (result?.kind === 'draft' && result.report) published.push(result.report);
      continue;
    }
    const start = event.activityTaskScheduledEventAttributes;
    if (start) {
      const type = start.activityType?.name ?? '';
      scheduled.set(String(event.eventId), type);
      if (type === 'publishReport') {
        const input = (await firstPayloadValue(converter, start.input?.payloads)) as PublishInput | undefined;
        if (input?.kind === 'draft') published.push(input.report);
      }
      continue;
    }
    const done = event.activityTaskCompletedEventAttributes;
    if (!done) continue;
    const type = scheduled.get(String(done.scheduledEventId));
    if (type === 'synthesizeReport') {
      const result = (await firstPayloadValue(converter, done.result?.payloads)) as
        SynthesisResult | undefined;
      if (result?.report) synthesized.push(result.report);
    } else if (type === 'planTask') {
      const result = (await firstPayloadValue(converter, done.result?.payloads)) as
        PlanTaskResult | undefined;
      if (result?.valid) plans.push(result.plan);
    }
  }
  return { published, synthesized, plans };
}

/**
 * The version shown before `current`: the last one before its last showing that differs from it,
 * or undefined when there is none (the first version, or only the same one again).
 */
export function previousOf<T>(
  versions: readonly T[],
  current: T,
  same: (a: T, b: T) => boolean,
): T | undefined {
  let at = versions.length - 1;
  while (at >= 0 && !same(versions[at]!, current)) at--;
  if (at < 0) return undefined;
  for (let i = at - 1; i >= 0; i--) if (!same(versions[i]!, current)) return versions[i];
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Text

/** Lines kept around each change; longer unchanged runs are folded. */
const CONTEXT_LINES = 3;
/**
 * Edits the diff looks for before giving up: two texts further apart are shown as one passage
 * replaced by the other (lines), a passage as removed then added (words). Bounds the work a large
 * draft costs.
 */
const MAX_LINE_EDITS = 4000;
const MAX_WORD_EDITS = 2000;

/** A piece of a changed passage: kept (`=`), added (`+`) or removed (`-`) words. */
export interface WordChange {
  op: '=' | '+' | '-';
  text: string;
}

/** One part of a text diff, in reading order. */
export type DiffPart =
  /** Unchanged lines shown around a change. */
  | { kind: 'same'; text: string }
  /** Unchanged lines folded away. */
  | { kind: 'folded'; lines: number }
  /** Lines that changed, word by word. */
  | { kind: 'changed'; words: WordChange[] };

export interface TextDiff {
  parts: DiffPart[];
  /** Lines added and removed. */
  added: number;
  removed: number;
}

const lineCount = (text: string): number => (text ? text.replace(/\n$/, '').split('\n').length : 0);

/** Keeps the first and last `CONTEXT_LINES` lines of an unchanged run (only the end before the first change, the start after the last). */
function foldSame(text: string, isFirst: boolean, isLast: boolean): DiffPart[] {
  const lines = text.replace(/\n$/, '').split('\n');
  const head = isFirst ? 0 : CONTEXT_LINES;
  const tail = isLast ? 0 : CONTEXT_LINES;
  if (lines.length <= head + tail + 1) return [{ kind: 'same', text }];
  const parts: DiffPart[] = [];
  if (head) parts.push({ kind: 'same', text: `${lines.slice(0, head).join('\n')}\n` });
  parts.push({ kind: 'folded', lines: lines.length - head - tail });
  if (tail) parts.push({ kind: 'same', text: `${lines.slice(-tail).join('\n')}\n` });
  return parts;
}

/**
 * A readable diff of two texts: changed lines word by word (a removed passage and the one that
 * replaced it side by side), unchanged runs folded to a few lines of context.
 */
export function textDiff(before: string, after: string): TextDiff {
  const changes = diffLines(before, after, { maxEditLength: MAX_LINE_EDITS }) ?? [
    { value: before, removed: true, added: false, count: 0 },
    { value: after, removed: false, added: true, count: 0 },
  ];
  const parts: DiffPart[] = [];
  let added = 0;
  let removed = 0;
  for (let i = 0; i < changes.length; i++) {
    const c = changes[i]!;
    if (!c.added && !c.removed) {
      parts.push(...foldSame(c.value, i === 0, i === changes.length - 1));
      continue;
    }
    // A removal followed by an addition is one replaced passage: compared word by word.
    const next = changes[i + 1];
    const gone = c.removed ? c.value : '';
    const come = c.added ? c.value : next?.added ? next.value : '';
    if (c.removed && next?.added) i++;
    removed += lineCount(gone);
    added += lineCount(come);
    const words = (
      diffWordsWithSpace(gone, come, { maxEditLength: MAX_WORD_EDITS })?.map((w): WordChange => ({
        op: w.added ? '+' : w.removed ? '-' : '=',
        text: w.value,
      })) ?? [
        { op: '-', text: gone },
        { op: '+', text: come },
      ]
    ).filter((w) => w.text);
    parts.push({ kind: 'changed', words });
  }
  return { parts, added, removed };
}

// ---------------------------------------------------------------------------------------------------------
// Plans

/** How a revised plan differs from the one before it. */
export interface PlanDelta {
  rationale?: { before: string; after: string };
  added: PlanStep[];
  removed: PlanStep[];
  /** Steps kept under the same id, with what changed. */
  changed: { id: string; fields: { field: string; before: string; after: string }[] }[];
}

const FIELDS = ['agent', 'question', 'dependsOn', 'decompose'] as const;

const fieldText = (step: PlanStep, field: (typeof FIELDS)[number]): string => {
  const value = step[field];
  return Array.isArray(value) ? value.join(', ') || '(none)' : String(value);
};

export function planDelta(before: Plan, after: Plan): PlanDelta {
  const old = new Map(before.steps.map((s) => [s.id, s]));
  const now = new Set(after.steps.map((s) => s.id));
  return {
    ...(before.rationale !== after.rationale
      ? { rationale: { before: before.rationale, after: after.rationale } }
      : {}),
    added: after.steps.filter((s) => !old.has(s.id)),
    removed: before.steps.filter((s) => !now.has(s.id)),
    changed: after.steps.flatMap((s) => {
      const was = old.get(s.id);
      if (!was) return [];
      const fields = FIELDS.filter((f) => fieldText(was, f) !== fieldText(s, f)).map((field) => ({
        field,
        before: fieldText(was, field),
        after: fieldText(s, field),
      }));
      return fields.length ? [{ id: s.id, fields }] : [];
    }),
  };
}

export const planUnchanged = (d: PlanDelta): boolean =>
  !d.rationale && !d.added.length && !d.removed.length && !d.changed.length;

// ---------------------------------------------------------------------------------------------------------
// A draft at a glance

/** What a person sees of a draft before reading it: its title and summary, and how long it is. */
export interface DraftOutline {
  title?: string;
  summary?: string;
  bytes: number;
  words: number;
  lines: number;
}

/**
 * A report body's title (its first `# ` heading) and summary (the `**Summary.**` paragraph the
 * synthesis writes, else the first paragraph that is not a heading, a quote (a label) or a comment
 * (a marker)), and its size.
 */
export function draftOutline(body: string): DraftOutline {
  const paragraphs = body.split(/\n\s*\n/).map((p) => p.trim());
  const title = /^# (.+)$/m.exec(body)?.[1]?.trim();
  const marked = paragraphs.find((p) => p.startsWith('**Summary.**'));
  const summary = marked
    ? marked.slice('**Summary.**'.length).trim()
    : paragraphs.find((p) => p && !/^(#|>|<!--)/.test(p));
  return {
    ...(title ? { title } : {}),
    ...(summary ? { summary } : {}),
    bytes: Buffer.byteLength(body, 'utf8'),
    words: body.split(/\s+/).filter(Boolean).length,
    lines: lineCount(body),
  };
}
