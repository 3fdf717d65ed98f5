/**
 * The live view of a task, for `npm start` and `npm run baton -- watch`: phase, a progress bar over
 * the steps, each step (and the steps of decomposed children), tokens and estimated cost, the
 * pending gate and who may decide.
 *
 * Two renderings of the same `status` query:
 *  - {@link renderFrame}: a frame of lines that a terminal redraws in place (see {@link createView});
 *  - {@link changeLines}: plain lines saying what changed, for logs and pipes (CI), printed only when
 *    something changed.
 * Both are pure (status in, lines out), so they are tested without a terminal. {@link createView}
 * is the small stateful part: it writes frames with ANSI cursor movement, or plain lines.
 *
 * Text a model wrote (questions, summaries, errors) is shown as data: control characters are
 * replaced, so it can never move the cursor or restyle the terminal.
 */
import type { StepStatus, TaskStatus } from '../contract/messages';
import { cut, displayWidth, line, sanitize } from '../lib/text';
import { formatAudit, formatPendingGate, formatStep } from './format';

export { clip, displayWidth, summaryLine } from '../lib/text';

// ---------------------------------------------------------------------------------------------------------
// Styled segments

type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan' | 'magenta';

/** SGR codes to turn a style on and off (off codes reset only that attribute). */
const SGR: Record<Style, [number, number]> = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
  magenta: [35, 39],
};

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
    out += color && seg.style && text ? `\x1b[${SGR[seg.style][0]}m${text}\x1b[${SGR[seg.style][1]}m` : text;
  }
  return out;
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

/** The steps of a status, or the plan's steps as pending before execution starts. */
function stepsOf(s: TaskStatus): StepStatus[] {
  if (s.steps.length) return s.steps;
  return (s.plan?.steps ?? []).map((p) => ({ ...p, state: 'pending' as const }));
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

/** Usage as TaskStatus carries it, with the optional cache and cost fields read defensively. */
interface LooseUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadInputTokens?: unknown;
  cacheCreationInputTokens?: unknown;
  costUsd?: unknown;
}

const num = (n: number): string => n.toLocaleString('en-US');

/** `$0.0123`, or `$12.34` from a dollar up (as config/cost.ts writes it). */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0';
  if (usd < 0.0001) return '< $0.0001';
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}

/**
 * The estimated cost in USD: a number, `null` when unknown (a model without a price), or undefined
 * when the task has no estimate at all. Read from `usage.costUsd`, or a `cost` on the status.
 */
export function costOf(s: TaskStatus): number | null | undefined {
  const usage: LooseUsage = s.usage;
  if (typeof usage.costUsd === 'number' || usage.costUsd === null) return usage.costUsd;
  const cost = (s as TaskStatus & { cost?: unknown }).cost;
  if (typeof cost === 'number') return cost;
  if (cost && typeof cost === 'object') {
    for (const key of ['totalUsd', 'usd', 'costUsd', 'total']) {
      const value = (cost as Record<string, unknown>)[key];
      if (typeof value === 'number' || value === null) return value;
    }
  }
  return undefined;
}

/**
 * Tokens as one phrase: `1,234 in, 567 out`, then the cache figures and the estimated cost when the
 * status has them: `, cache 800 read / 200 written, est. cost $0.0123`.
 */
export function formatUsage(s: TaskStatus, sep = ', '): string {
  const usage: LooseUsage = s.usage;
  const parts = [`${num(usage.inputTokens)} in`, `${num(usage.outputTokens)} out`];
  const read = usage.cacheReadInputTokens;
  const written = usage.cacheCreationInputTokens;
  if (typeof read === 'number' || typeof written === 'number') {
    parts.push(
      `cache ${num(typeof read === 'number' ? read : 0)} read / ${num(typeof written === 'number' ? written : 0)} written`,
    );
  }
  const cost = costOf(s);
  if (cost !== undefined) parts.push(cost === null ? 'est. cost unknown' : `est. cost ${formatUsd(cost)}`);
  return parts.join(sep);
}

/** People who may still decide at the pending gate: approvers who have not approved yet (`*`: anyone). */
export function stillAwaiting(gate: NonNullable<TaskStatus['pendingGate']>): string {
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

const CLOSED_PHASES: readonly TaskStatus['phase'][] = ['completed', 'rejected', 'cancelled', 'failed'];

/** A step's rows: its own line and, for a decomposed step, its child's progress and steps. */
interface StepRows {
  step: StepStatus;
  own: Seg[];
  child: Seg[][];
}

function stepRows(
  steps: readonly StepStatus[],
  indent: string,
  children: ReadonlyMap<string, TaskStatus> | undefined,
  depth = 0,
): StepRows[] {
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
        for (const rows of stepRows(sub, inner, children, depth + 1)) child.push(rows.own, ...rows.child);
      }
    }
    return { step, own, child };
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
  const all = rows.flatMap((r) => [r.own, ...r.child]);
  if (all.length <= budget) return all;
  // First drop the children's steps, keeping each child's one-line progress.
  const compact = rows.flatMap((r) => [r.own, ...r.child.slice(0, 1)]);
  if (compact.length <= budget) return compact;
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

  const foot: Seg[][] = [[{ text: '  tokens: ', style: 'dim' }, { text: formatUsage(s, ' · ') }]];
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
        text: `    npm run baton -- approve|reject|request-changes ${line(s.workflowId)}${gate.gate === 'report' && s.report?.draftPath ? `   draft: ${line(s.report.draftPath)}` : ''}`,
        style: 'dim',
      },
    ]);
  }
  if (s.report?.path) foot.push([{ text: '  report: ', style: 'dim' }, { text: line(s.report.path) }]);
  if (s.error) foot.push([{ text: `  error: ${line(s.error)}`, style: 'red' }]);
  if (options.note) foot.push([{ text: `  (${line(options.note)})`, style: 'yellow' }]);

  const rows = stepRows(steps, '  ', options.children);
  const maxLines = options.height === undefined ? Infinity : Math.max(options.height - 1, 1);
  const stepBudget = Math.max(maxLines - head.length - foot.length, 1);
  const body = fitSteps(rows, stepBudget);
  return [...head, ...body, ...foot].slice(0, maxLines).map((segs) => fit(segs, width, color));
}

// ---------------------------------------------------------------------------------------------------------
// Plain lines

export interface ChangeOptions {
  /** Child task statuses before and now, by workflow id. */
  prevChildren?: ReadonlyMap<string, TaskStatus>;
  children?: ReadonlyMap<string, TaskStatus>;
  /** Also print the pending gate when it opens or its approvals change (`watch`; `npm start` asks instead). */
  gate?: boolean;
}

/** Child step lines that changed, as `step s2/s1 [researcher] done`, recursively. */
function childChanges(
  prefix: string,
  step: StepStatus,
  prevChildren: ReadonlyMap<string, TaskStatus> | undefined,
  children: ReadonlyMap<string, TaskStatus> | undefined,
): string[] {
  const child = step.childWorkflowId ? children?.get(step.childWorkflowId) : undefined;
  if (!child) return [];
  const before = prevChildren?.get(step.childWorkflowId!);
  const out: string[] = [];
  for (const sub of child.steps) {
    const id = `${prefix}${step.id}/${sub.id}`;
    const was = before?.steps.find((b) => b.id === sub.id);
    if (was?.state !== sub.state) out.push(`  ${formatStep({ ...sub, id })}`);
    out.push(...childChanges(`${prefix}${step.id}/`, sub, prevChildren, children));
  }
  return out;
}

/**
 * What changed from `prev` to `next`, as plain lines: the phase, the plan, each step whose state
 * changed (children's steps as `s2/s1`), progress, new audit entries, tokens and, with
 * `options.gate`, the pending gate. Nothing when nothing changed.
 */
export function changeLines(
  prev: TaskStatus | undefined,
  next: TaskStatus,
  options: ChangeOptions = {},
): string[] {
  const out: string[] = [];
  if (prev?.phase !== next.phase) out.push(`phase: ${next.phase}`);
  if (next.plan && prev?.plan !== next.plan && JSON.stringify(prev?.plan) !== JSON.stringify(next.plan)) {
    out.push(`plan (${next.plan.steps.length} steps): ${line(next.plan.rationale)}`);
    for (const s of next.plan.steps) {
      const deps = s.dependsOn.length ? ` after ${s.dependsOn.join(', ')}` : '';
      out.push(
        `  ${line(s.id)} [${line(s.agent)}]${deps}${s.decompose ? ' (decomposes)' : ''}: ${line(s.question)}`,
      );
    }
  }
  let stepsChanged = false;
  for (const step of next.steps) {
    const before = prev?.steps.find((s) => s.id === step.id);
    if (before?.state !== step.state) {
      out.push(`  ${formatStep(step)}`);
      stepsChanged ||= before !== undefined || step.state !== 'pending';
    }
    out.push(...childChanges('', step, options.prevChildren, options.children));
  }
  if (stepsChanged && next.steps.length) {
    const c = countSteps(next.steps);
    const before = prev?.steps.length ? countSteps(prev.steps) : undefined;
    if (!before || before.done + before.failed + before.skipped !== c.done + c.failed + c.skipped)
      out.push(`  progress: ${formatCounts(c)}`);
  }
  if (options.gate) {
    const g = next.pendingGate;
    const was = prev?.pendingGate;
    if (g && (was?.gate !== g.gate || was.stage !== g.stage || was.approvals.length !== g.approvals.length))
      out.push(sanitize(`  ${formatPendingGate(g)}`));
  }
  for (const entry of next.audit.slice(prev?.audit.length ?? 0))
    out.push(sanitize(`  audit: ${formatAudit(entry)}`));
  if (prev && formatUsage(prev) !== formatUsage(next)) out.push(`  tokens so far: ${formatUsage(next)}`);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Writing to a terminal

/** What the view needs of stdout: a tty.WriteStream is one; tests pass a fake. */
export interface TerminalLike {
  write(chunk: string): unknown;
  columns?: number;
  rows?: number;
  hasColors?(): boolean;
  on?(event: 'resize', listener: () => void): unknown;
  off?(event: 'resize', listener: () => void): unknown;
}

export interface View {
  /** Shows a new status (a redraw, or the lines saying what changed). */
  update(status: TaskStatus, children?: ReadonlyMap<string, TaskStatus>): void;
  /** A line of its own, kept in the scrollback above the live frame. */
  log(text: string): void;
  /** A passing remark (e.g. the task does not answer); `undefined` clears it. */
  note(text: string | undefined): void;
  /** Leaves the frame on screen as it is and stops redrawing until the next update (before a prompt). */
  suspend(): void;
  /** Leaves the last frame on screen, shows the cursor and lets go of the terminal. */
  close(): void;
}

export interface ViewOptions {
  /** A terminal to redraw in; without one (or not a TTY), plain lines go to `print`. */
  terminal?: TerminalLike & { isTTY?: boolean };
  print: (line: string) => void;
  /** Plain lines: also print the pending gate as it changes. */
  gate?: boolean;
  /** Restore the cursor when the process exits or is interrupted (Ctrl-C exits with 130). */
  restoreOnExit?: boolean;
}

const ESC = '\x1b[';
const HIDE_CURSOR = `${ESC}?25l`;
const SHOW_CURSOR = `${ESC}?25h`;
/** Synchronized output (DEC mode 2026): the terminal shows a redraw at once; others ignore it. */
const SYNC_START = `${ESC}?2026h`;
const SYNC_END = `${ESC}?2026l`;

/** `text` without SGR and cursor escape sequences (as this module writes them). */
const ANSI_SEQUENCE = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
const stripAnsi = (text: string): string => text.replace(ANSI_SEQUENCE, '');

/** Whether to redraw in place: a TTY that understands cursor movement. */
export function isLiveTerminal(
  terminal: (TerminalLike & { isTTY?: boolean }) | undefined,
  env = process.env,
): boolean {
  return Boolean(terminal?.isTTY) && env.TERM !== 'dumb';
}

/** Plain lines, printed when something changed: for logs and pipes. */
class PlainView implements View {
  private prev?: TaskStatus;
  private prevChildren?: ReadonlyMap<string, TaskStatus>;
  private lastNote?: string;

  constructor(private readonly options: ViewOptions) {}

  update(status: TaskStatus, children?: ReadonlyMap<string, TaskStatus>): void {
    const lines = changeLines(this.prev, status, {
      prevChildren: this.prevChildren,
      children,
      gate: this.options.gate,
    });
    for (const l of lines) this.options.print(l);
    this.prev = status;
    this.prevChildren = children;
    this.lastNote = undefined;
  }

  log(text: string): void {
    this.options.print(text);
  }

  note(text: string | undefined): void {
    if (text && text !== this.lastNote) this.options.print(`  (${text})`);
    this.lastNote = text;
  }

  suspend(): void {}
  close(): void {}
}

/** A frame redrawn in place: the cursor goes back up over the last frame and overwrites it. */
class TtyView implements View {
  private status?: TaskStatus;
  private children?: ReadonlyMap<string, TaskStatus>;
  private remark?: string;
  private tick = 0;
  /** Audit entries already logged above the frame. */
  private auditLogged = 0;
  /** The frame on screen (plain widths matter for resizes), and the rows it takes. */
  private shown: string[] = [];
  private shownWidths: number[] = [];
  private cursorHidden = false;
  private closed = false;
  private readonly onResize = (): void => this.resized();
  private readonly onExit = (): void => this.restoreCursor();
  private readonly onSigint = (): void => {
    this.restoreCursor();
    process.exit(130);
  };

  constructor(
    private readonly terminal: TerminalLike,
    private readonly options: ViewOptions,
  ) {
    terminal.on?.('resize', this.onResize);
    if (options.restoreOnExit) {
      process.on('exit', this.onExit);
      process.on('SIGINT', this.onSigint);
    }
  }

  private get color(): boolean {
    return this.terminal.hasColors?.() ?? false;
  }

  private frame(): string[] {
    if (!this.status) return [];
    return renderFrame(this.status, {
      width: this.terminal.columns ?? 80,
      height: this.terminal.rows,
      color: this.color,
      tick: this.tick,
      children: this.children,
      note: this.remark,
    });
  }

  /** Rows the frame on screen takes now: a terminal narrower than when it was drawn wraps its lines. */
  private shownRows(): number {
    const columns = this.terminal.columns ?? 80;
    return this.shownWidths.reduce((n, w) => n + Math.max(1, Math.ceil(w / columns)), 0);
  }

  /** Moves to the top of the frame on screen (if any) and forgets it. */
  private up(): string {
    const rows = this.shownRows();
    this.shown = [];
    this.shownWidths = [];
    return rows ? `\r${ESC}${rows}A` : '\r';
  }

  /**
   * Draws `lines` over the frame on screen, after `log` lines (kept above the frame). Unchanged
   * frames are not written again, unless `force`.
   */
  private draw(lines: string[], force = false, log = ''): void {
    if (this.closed) return;
    if (!force && !log && lines.length === this.shown.length && lines.every((l, i) => l === this.shown[i]))
      return;
    let out = SYNC_START;
    if (!this.cursorHidden) {
      out += HIDE_CURSOR;
      this.cursorHidden = true;
    }
    out += this.up();
    // Log lines push the frame down: clear it first. Otherwise overwrite in place, line by line,
    // then clear what is left of a longer old frame: nothing is blanked, so nothing flickers.
    if (log) out += `${ESC}J${log}`;
    for (const l of lines) out += `${l}${ESC}K\n`;
    out += `${ESC}J${SYNC_END}`;
    this.terminal.write(out);
    this.shown = lines;
    this.shownWidths = lines.map((l) => displayWidth(stripAnsi(l)));
  }

  update(status: TaskStatus, children?: ReadonlyMap<string, TaskStatus>): void {
    this.status = status;
    this.children = children;
    this.remark = undefined;
    this.tick++;
    // Decisions and gate events are history, not state: they scroll above the frame.
    const audit = status.audit
      .slice(this.auditLogged)
      .map((e) => `${sanitize(`  audit: ${formatAudit(e)}`)}\n`);
    this.auditLogged = Math.max(this.auditLogged, status.audit.length);
    this.draw(this.frame(), false, audit.join(''));
  }

  log(text: string): void {
    // Lines above the frame may wrap: the redraw never goes back over them.
    const lines = text.split('\n').map((l) => sanitize(l));
    this.draw(this.frame(), false, lines.map((l) => `${l}\n`).join(''));
  }

  note(text: string | undefined): void {
    this.remark = text;
    this.draw(this.frame());
  }

  /** The terminal changed size: redraw over the old frame, which may now wrap onto more rows. */
  private resized(): void {
    if (this.shown.length) this.draw(this.frame(), true);
  }

  suspend(): void {
    this.shown = [];
    this.shownWidths = [];
    this.restoreCursor();
  }

  private restoreCursor(): void {
    if (!this.cursorHidden) return;
    this.cursorHidden = false;
    this.terminal.write(SHOW_CURSOR);
  }

  close(): void {
    if (this.closed) return;
    this.restoreCursor();
    this.closed = true;
    this.shown = [];
    this.terminal.off?.('resize', this.onResize);
    if (this.options.restoreOnExit) {
      process.off('exit', this.onExit);
      process.off('SIGINT', this.onSigint);
    }
  }
}

/** A live frame on a TTY, plain lines otherwise. */
export function createView(options: ViewOptions): View {
  return options.terminal && isLiveTerminal(options.terminal)
    ? new TtyView(options.terminal, options)
    : new PlainView(options);
}

// ---------------------------------------------------------------------------------------------------------
// Children of decomposed steps

/**
 * The status of each decomposed step's child task (and theirs), by workflow id. A running child is
 * asked again each time; a finished one is kept from `known` once seen finished. A child that does
 * not answer keeps its last status (or none): the view never fails for a child.
 */
export async function childStatuses(
  s: TaskStatus,
  query: (workflowId: string) => Promise<TaskStatus>,
  known: ReadonlyMap<string, TaskStatus> = new Map(),
): Promise<Map<string, TaskStatus>> {
  const out = new Map<string, TaskStatus>();
  const visit = async (status: TaskStatus, depth: number): Promise<void> => {
    if (depth > 4) return;
    const ids = stepsOf(status).flatMap((step) => (step.childWorkflowId ? [step.childWorkflowId] : []));
    await Promise.all(
      ids.map(async (id) => {
        const before = known.get(id);
        let child = before;
        if (!before || !CLOSED_PHASES.includes(before.phase)) child = await query(id).catch(() => before);
        if (!child) return;
        out.set(id, child);
        await visit(child, depth + 1);
      }),
    );
  };
  await visit(s, 1);
  return out;
}
