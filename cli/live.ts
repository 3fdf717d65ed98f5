/**
 * The live view of a task, for `npm start` and `npm run baton -- watch`, in two renderings of the same
 * `status` query:
 *  - on a terminal, a frame redrawn in place ({@link renderFrame}, cli/live-frame.ts);
 *  - elsewhere (logs, pipes, CI), plain lines saying what changed, printed only when something
 *    changed ({@link changeLines}, cli/live-changes.ts).
 * {@link createView} is the small stateful part: it writes frames with ANSI cursor movement, or
 * plain lines. {@link childStatuses} gathers the statuses of decomposed steps' child tasks.
 */
import { stripVTControlCharacters } from 'node:util';
import { stepsOf } from '../client';
import type { TaskStatus } from '../contract/messages';
import { safeText } from '../contract/text';
import { displayWidth, sanitize } from '../lib/text';
import { formatAudit } from './format';
import { changeLines, liveLines } from './live-changes';
import { CLOSED_PHASES, renderFrame, type LiveByWorkflow } from './live-frame';

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
  /**
   * Shows a new status (a redraw, or the lines saying what changed), with the live words of the
   * model calls in flight, by workflow id (under their running steps; plain lines when they change).
   */
  update(status: TaskStatus, children?: ReadonlyMap<string, TaskStatus>, live?: LiveByWorkflow): void;
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

/** Whether to redraw in place: a TTY that understands cursor movement. */
function isLiveTerminal(
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
  /** The live words last printed, by call. */
  private readonly wordsShown = new Map<string, string>();

  constructor(private readonly options: ViewOptions) {}

  update(status: TaskStatus, children?: ReadonlyMap<string, TaskStatus>, live?: LiveByWorkflow): void {
    const lines = changeLines(this.prev, status, {
      prevChildren: this.prevChildren,
      children,
      gate: this.options.gate,
    });
    lines.push(...liveLines(this.wordsShown, status, children, live));
    for (const l of lines) this.options.print(l);
    this.prev = status;
    this.prevChildren = children;
    this.lastNote = undefined;
  }

  log(text: string): void {
    this.options.print(safeText(text, { multiline: true }));
  }

  note(text: string | undefined): void {
    if (text && text !== this.lastNote) this.options.print(`  (${sanitize(text)})`);
    this.lastNote = text;
  }

  suspend(): void {}
  close(): void {}
}

/** A frame redrawn in place: the cursor goes back up over the last frame and overwrites it. */
class TtyView implements View {
  private status?: TaskStatus;
  private children?: ReadonlyMap<string, TaskStatus>;
  private live?: LiveByWorkflow;
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
      live: this.live,
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
    this.shownWidths = lines.map((l) => displayWidth(stripVTControlCharacters(l)));
  }

  update(status: TaskStatus, children?: ReadonlyMap<string, TaskStatus>, live?: LiveByWorkflow): void {
    this.status = status;
    this.children = children;
    this.live = live;
    this.remark = undefined;
    this.tick++;
    // Decisions and gate events are history, not state: they scroll above the frame.
    const audit = status.audit.slice(this.auditLogged).map((e) => `  audit: ${formatAudit(e)}\n`);
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
 * The workflows whose model calls may be in flight: the task and its children that are still open
 * (those of running steps, at any depth); none once the task is closed.
 */
export function openWorkflows(
  s: TaskStatus,
  children: ReadonlyMap<string, TaskStatus> = new Map(),
): string[] {
  if (CLOSED_PHASES.includes(s.phase)) return [];
  const open = [...children].filter(([, child]) => !CLOSED_PHASES.includes(child.phase)).map(([id]) => id);
  return [s.workflowId, ...open];
}

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
