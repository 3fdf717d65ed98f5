/**
 * The live frame of a task (see cli/live.ts): phase, a progress bar over the steps, each step (and
 * the steps of decomposed children), tokens and estimated cost, the pending gate and who may decide.
 * Pure: status in, lines out, each line fitted to the terminal's width and, optionally, styled.
 *
 * Text a model wrote (questions, summaries, errors) is shown as data: control characters are
 * replaced (lib/text.ts), so it can never move the cursor or restyle the terminal.
 */
import { styleText } from 'node:util';
import { shownLocation } from '../activities/report';
import { stepsOf } from '../client';
import type { LiveWords } from '../contract/live';
import type { StepStatus, TaskStatus } from '../contract/messages';
import { formatUsd } from '../contract/usage';
import { cut, displayWidth, line } from '../lib/text';
import { formatRound } from './format';

// ---------------------------------------------------------------------------------------------------------
// Styled segments

type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan' | 'magenta';

interface Seg {
  text: string;
  style?: Style;
}

/** Segments as one terminal line of at most `width` columns (cut with `…`), styled when `color`. */
function fit(segs: readonly Seg[], width: number, color: boolean): string {
  const cutting = segs.reduce((n, s) => n + displayWidth(s.text), 0) > width;
  let room = width;
  let out = '';
  for (const seg of segs) {
    if (room <= 0) break;
    let text = seg.text;
    const w = displayWidth(text);
    if (cutting && w >= room) {
      text = cut(text, room);
      room = 0;
    } else room -= w;
    // The caller decided on colour (the terminal's hasColors(), which heeds NO_COLOR and FORCE_COLOR).
    out += color && seg.style && text ? styleText(seg.style, text, { validateStream: false }) : text;
  }
  return out;
}

/** The end of `text` that fits in `width` columns, after `…` when cut. Never splits a code point. */
export function tail(text: string, width: number): string {
  if (displayWidth(text) <= width) return text;
  const chars = [...text];
  let used = 1;
  let from = chars.length;
  while (from > 0 && used + displayWidth(chars[from - 1]!) <= width) used += displayWidth(chars[--from]!);
  return `…${chars.slice(from).join('')}`;
}

/** `text` padded with spaces to `width` columns. */
const pad = (text: string, width: number): string =>
  text + ' '.repeat(Math.max(width - displayWidth(text), 0));

// ---------------------------------------------------------------------------------------------------------
// Progress, usage, cost

export interface StepCounts {
  total: number;
  done: number;
  running: number;
  failed: number;
  skipped: number;
  pending: number;
}

export function countSteps(steps: readonly StepStatus[]): StepCounts {
  const counts: StepCounts = { total: steps.length, done: 0, running: 0, failed: 0, skipped: 0, pending: 0 };
  for (const step of steps) counts[step.state]++;
  return counts;
}

/** `2/5 done · 1 skipped · 1 failed · 1 running`: zero counts other than done are left out. */
export function formatCounts(c: StepCounts): string {
  const parts = [`${c.done}/${c.total} done`];
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.running) parts.push(`${c.running} running`);
  return parts.join(' · ');
}

/** The bar's cells: done, skipped, failed, running, then pending, each in proportion to its count. */
function progressBar(c: StepCounts, cells: number): Seg[] {
  if (c.total === 0) return [{ text: '░'.repeat(cells), style: 'dim' }];
  const parts: [number, string, Style | undefined][] = [
    [c.done, '█', 'green'],
    [c.skipped, '▒', 'yellow'],
    [c.failed, '▒', 'red'],
    [c.running, '▓', 'cyan'],
    [c.pending, '░', 'dim'],
  ];
  const segs: Seg[] = [];
  let before = 0;
  let drawn = 0;
  for (const [count, char, style] of parts) {
    before += count;
    const upTo = Math.round((before / c.total) * cells);
    if (upTo > drawn) segs.push({ text: char.repeat(upTo - drawn), style });
    drawn = Math.max(drawn, upTo);
  }
  return segs;
}

const num = (n: number): string => n.toLocaleString('en-US');

/**
 * Tokens as one phrase: `1,234 in, 567 out`, then the cache figures and the estimated cost when the
 * status has them: `, cache 800 read / 200 written, est. cost $0.0123` (`unknown` when a model has no
 * price; nothing when the usage predates estimates).
 */
export function formatUsage(s: TaskStatus, sep = ', '): string {
  const {
    inputTokens,
    outputTokens,
    cacheReadInputTokens: read,
    cacheCreationInputTokens: written,
  } = s.usage;
  const parts = [`${num(inputTokens)} in`, `${num(outputTokens)} out`];
  if (read !== undefined || written !== undefined) {
    parts.push(`cache ${num(read ?? 0)} read / ${num(written ?? 0)} written`);
  }
  const cost = s.usage.costUsd;
  if (cost !== undefined) parts.push(cost === null ? 'est. cost unknown' : `est. cost ${formatUsd(cost)}`);
  return parts.join(sep);
}

/** People who may still decide at the pending gate: approvers who have not approved yet (`*`: anyone). */
function stillAwaiting(gate: NonNullable<TaskStatus['pendingGate']>): string {
  const approved = new Set(gate.approvals.map((a) => a.by));
  const left = gate.approvers.filter((a) => !approved.has(a));
  return left.length ? left.map((a) => (a === '*' ? 'anyone' : a)).join(', ') : '(nobody listed)';
}

// ---------------------------------------------------------------------------------------------------------
// The frame

export interface FrameOptions {
  /** Terminal columns. Every line is at most `width - 1` columns, so no terminal wraps it. */
  width: number;
  /** Terminal rows: the frame is shortened to fit (steps are summarised first). */
  height?: number;
  /** ANSI colors. */
  color?: boolean;
  /** Advances the spinner; any integer. */
  tick?: number;
  /** Status of decomposed steps' child tasks, by workflow id (children's children too). */
  children?: ReadonlyMap<string, TaskStatus>;
  /** A passing remark shown at the bottom, e.g. that the task does not answer right now. */
  note?: string;
  /**
   * The live words of the model calls in flight (contract/live.ts), by the workflow id of the task
   * or child that runs them: shown dimmed under their running step (the lead's under the header).
   */
  live?: LiveByWorkflow;
}

/** Live words of the calls in flight, by workflow id. */
export type LiveByWorkflow = ReadonlyMap<string, readonly LiveWords[]>;

/** How many rows a running step's live words take at most. */
const LIVE_ROWS = 2;

/**
 * The newest of `words` in at most {@link LIVE_ROWS} dimmed rows of `width` columns after `indent`:
 * the tail of what the model wrote, one line, broken where the width ends.
 */
function liveRows(words: LiveWords | undefined, indent: string, width: number): Seg[][] {
  const room = Math.max(width - displayWidth(indent) - 2, 10);
  const rows: string[] = [];
  for (let rest = [...tail(words ? line(words.words) : '', room * LIVE_ROWS)]; rest.length;) {
    let [w, n] = [0, 0];
    while (n < rest.length && w + displayWidth(rest[n]!) <= room) w += displayWidth(rest[n++]!);
    rows.push(rest.splice(0, Math.max(n, 1)).join(''));
  }
  return rows.slice(-LIVE_ROWS).map((r, i) => [{ text: `${indent}${i ? '  ' : '» '}${r}`, style: 'dim' }]);
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

const STATE_ICON: Record<StepStatus['state'], Seg> = {
  done: { text: '✓', style: 'green' },
  running: { text: '●', style: 'cyan' },
  failed: { text: '✗', style: 'red' },
  skipped: { text: '↷', style: 'yellow' },
  pending: { text: '·', style: 'dim' },
};

const PHASE_STYLE: Partial<Record<TaskStatus['phase'], Style>> = {
  'awaiting-plan-approval': 'magenta',
  'awaiting-report-approval': 'magenta',
  completed: 'green',
  rejected: 'red',
  failed: 'red',
  cancelled: 'yellow',
};

export const CLOSED_PHASES: readonly TaskStatus['phase'][] = ['completed', 'rejected', 'cancelled', 'failed'];

/** A step's rows: its own line and, for a decomposed step, its child's progress and steps. */
interface StepRows {
  step: StepStatus;
  own: Seg[];
  /** A running step's live words. */
  live: Seg[][];
  child: Seg[][];
}

/** Where the rows go: their width, the children's statuses, and the live words of the workflow shown. */
interface RowContext {
  width: number;
  children: ReadonlyMap<string, TaskStatus> | undefined;
  live: LiveByWorkflow | undefined;
  workflowId: string;
}

function stepRows(steps: readonly StepStatus[], indent: string, context: RowContext, depth = 0): StepRows[] {
  const { children } = context;
  const words = context.live?.get(context.workflowId) ?? [];
  const idWidth = Math.max(...steps.map((s) => displayWidth(line(s.id))), 2);
  const agentWidth = Math.max(...steps.map((s) => displayWidth(line(s.agent))), 5);
  return steps.map((step) => {
    const extra = [
      ...(step.attempt && step.attempt > 1 ? [`attempt ${step.attempt}`] : []),
      ...(step.revision ? [`re-run ${step.revision}`] : []),
    ];
    const own: Seg[] = [
      { text: indent },
      STATE_ICON[step.state],
      { text: ` ${pad(line(step.id), idWidth)}  ` },
      { text: pad(line(step.agent), agentWidth), style: 'bold' },
      { text: `  ${step.state.padEnd(7)}  ` },
      ...(extra.length ? [{ text: `(${extra.join(', ')}) `, style: 'dim' as const }] : []),
      ...(step.decompose ? [{ text: '⤷ ', style: 'dim' as const }] : []),
      { text: line(step.question) },
      ...((step.state === 'failed' || step.state === 'skipped') && step.error
        ? [
            {
              text: ` — ${line(step.error)}`,
              style: step.state === 'failed' ? ('red' as const) : ('yellow' as const),
            },
          ]
        : []),
    ];
    const running = step.state === 'running' && !step.childWorkflowId;
    const live = running
      ? liveRows(
          words.find((w) => w.step === step.id),
          `${indent}    `,
          context.width,
        )
      : [];
    const child: Seg[][] = [];
    const status = step.childWorkflowId ? children?.get(step.childWorkflowId) : undefined;
    if (step.childWorkflowId && depth < 4) {
      const inner = `${indent}    `;
      if (!status) {
        child.push([{ text: `${inner}↳ child ${line(step.childWorkflowId)}`, style: 'dim' }]);
      } else {
        const sub = stepsOf(status);
        child.push([
          { text: `${inner}↳ `, style: 'dim' },
          { text: line(status.phase), style: PHASE_STYLE[status.phase] },
          { text: sub.length ? ` · ${formatCounts(countSteps(sub))}` : '', style: 'dim' },
          { text: ` · child ${line(step.childWorkflowId)}`, style: 'dim' },
        ]);
        const lead = context.live?.get(step.childWorkflowId)?.find((w) => w.step === undefined);
        child.push(...liveRows(lead, `${inner}  `, context.width));
        const below = { ...context, workflowId: step.childWorkflowId };
        for (const rows of stepRows(sub, inner, below, depth + 1))
          child.push(rows.own, ...rows.live, ...rows.child);
      }
    }
    return { step, own, live, child };
  });
}

/** Which steps to show in `budget` rows when not all fit: running and failed first, then pending… */
const PRIORITY: Record<StepStatus['state'], number> = {
  running: 0,
  failed: 1,
  skipped: 2,
  pending: 3,
  done: 4,
};

function fitSteps(rows: StepRows[], budget: number): Seg[][] {
  const all = rows.flatMap((r) => [r.own, ...r.live, ...r.child]);
  if (all.length <= budget) return all;
  // First drop the children's steps, keeping each child's one-line progress, then the live words.
  const compact = rows.flatMap((r) => [r.own, ...r.live.slice(-1), ...r.child.slice(0, 1)]);
  if (compact.length <= budget) return compact;
  const terse = rows.flatMap((r) => [r.own, ...r.child.slice(0, 1)]);
  if (terse.length <= budget) return terse;
  // Then show the most telling steps, in plan order, and count the rest.
  const room = Math.max(budget - 1, 0);
  const chosen = new Set(
    [...rows.keys()]
      .sort((a, b) => PRIORITY[rows[a]!.step.state] - PRIORITY[rows[b]!.step.state] || a - b)
      .slice(0, room),
  );
  const hidden = countSteps(rows.filter((_, i) => !chosen.has(i)).map((r) => r.step));
  const rest = (['done', 'pending', 'skipped', 'failed', 'running'] as const)
    .filter((state) => hidden[state])
    .map((state) => `${hidden[state]} ${state}`)
    .join(', ');
  return [
    ...rows.filter((_, i) => chosen.has(i)).map((r) => r.own),
    [{ text: `   … ${hidden.total} more step${hidden.total === 1 ? '' : 's'} (${rest})`, style: 'dim' }],
  ];
}

/**
 * The live frame for a status: lines to redraw in place. Each line fits in `width - 1` columns;
 * with `height`, the frame has at most `height - 1` lines.
 */
export function renderFrame(s: TaskStatus, options: FrameOptions): string[] {
  const width = Math.max(options.width - 1, 10);
  const color = options.color ?? false;
  const closed = CLOSED_PHASES.includes(s.phase);
  const steps = stepsOf(s);
  const counts = countSteps(steps);

  const head: Seg[][] = [
    [
      closed
        ? { text: s.phase === 'completed' ? '✓' : '■', style: PHASE_STYLE[s.phase] }
        : { text: SPINNER[(options.tick ?? 0) % SPINNER.length]!, style: 'cyan' },
      { text: ' ' },
      { text: line(s.workflowId), style: 'bold' },
      { text: `  ${line(s.phase)}`, style: PHASE_STYLE[s.phase] },
      { text: `  ${line(s.playbook)}${s.depth ? `, depth ${s.depth}` : ''}`, style: 'dim' },
    ],
    [{ text: '  question: ', style: 'dim' }, { text: line(s.question) }],
  ];
  if (steps.length) {
    const label = ` ${formatCounts(counts)}`;
    const cells = Math.min(40, width - 4 - displayWidth(label));
    head.push(
      cells >= 5
        ? [{ text: '  [' }, ...progressBar(counts, cells), { text: ']' }, { text: label }]
        : [{ text: ` ${label}` }],
    );
  } else if (!closed) {
    head.push([
      { text: `  plan: ${s.planAttempts ? `attempt ${s.planAttempts}` : 'not yet'}`, style: 'dim' },
    ]);
  }
  // The lead's own calls (planning, the report) belong to no step.
  const lead = options.live?.get(s.workflowId)?.find((w) => w.step === undefined);
  if (!closed && lead) head.push(...liveRows(lead, '  ', width).slice(-1));

  const foot: Seg[][] = [[{ text: '  tokens: ', style: 'dim' }, { text: formatUsage(s, ' · ') }]];
  const round = s.rounds?.at(-1);
  if (round)
    foot.push([
      { text: '  ', style: 'dim' },
      { text: line(formatRound(round)), style: 'dim' },
    ]);
  const budget = s.budget?.stopped;
  if (budget) foot.push([{ text: `  budget: stopped, ${line(budget.reason)}`, style: 'yellow' }]);
  const gate = s.pendingGate;
  if (gate) {
    foot.push([
      { text: '  gate: ', style: 'dim' },
      { text: `${gate.gate}`, style: 'magenta' },
      {
        text: ` (${gate.stage}) ${gate.approvals.length} of ${gate.quorum} approval(s); may decide: ${line(stillAwaiting(gate))}${gate.deadline ? `; deadline ${gate.deadline}` : ''}`,
      },
    ]);
    foot.push([
      {
        text: `    npm run baton -- approve|reject|request-changes ${line(s.workflowId)}${gate.gate === 'report' && s.report?.draftPath ? `   draft: ${line(shownLocation(s.report.draftPath))}` : ''}`,
        style: 'dim',
      },
    ]);
  }
  if (s.report?.path)
    foot.push([{ text: '  report: ', style: 'dim' }, { text: line(shownLocation(s.report.path)) }]);
  if (s.error) foot.push([{ text: `  error: ${line(s.error)}`, style: 'red' }]);
  if (options.note) foot.push([{ text: `  (${line(options.note)})`, style: 'yellow' }]);

  const rows = stepRows(steps, '  ', {
    width,
    children: options.children,
    live: closed ? undefined : options.live,
    workflowId: s.workflowId,
  });
  const maxLines = options.height === undefined ? Infinity : Math.max(options.height - 1, 1);
  const stepBudget = Math.max(maxLines - head.length - foot.length, 1);
  const body = fitSteps(rows, stepBudget);
  return [...head, ...body, ...foot].slice(0, maxLines).map((segs) => fit(segs, width, color));
}
