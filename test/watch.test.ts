/**
 * Issue 7, live progress: the renderers of cli/live-frame.ts and cli/live-changes.ts (pure: status
 * in, lines out) as a terminal frame and as plain lines, the in-place redraw as a terminal would show it, `npm run baton -- watch`
 * against real tasks on the test server, and the summaries the Temporal Web UI shows for each
 * activity and child workflow, read back from workflow history.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { WorkflowHandle } from '@temporalio/client';
import { runCli } from '../cli/baton';
import { childStatuses, createView, type TerminalLike } from '../cli/live';
import { changeLines } from '../cli/live-changes';
import { renderFrame } from '../cli/live-frame';
import { clip, displayWidth, summaryLine } from '../lib/text';
import { researchTask } from '../workflows';
import { decide, type StepStatus, type TaskStatus } from '../contract/messages';
import {
  DEFAULT_PLAN,
  fakeModelActivities,
  pollUntil,
  tempActivityOptions,
  uniqueId,
  useTestServer,
  waitForStatus,
  withWorker,
} from './helpers';

// ---------------------------------------------------------------------------------------------------------
// Fixtures

function step(
  id: string,
  agent: string,
  question: string,
  state: StepStatus['state'],
  extra: Partial<StepStatus> = {},
): StepStatus {
  return { id, agent, question, dependsOn: [], decompose: false, state, ...extra };
}

function status(extra: Partial<TaskStatus> = {}): TaskStatus {
  return {
    workflowId: 'research-demo',
    question: 'How do A and B compare?',
    playbook: 'gated',
    depth: 0,
    phase: 'executing',
    planAttempts: 1,
    revisions: { plan: 0, report: 0 },
    steps: [
      step('s1', 'researcher', 'Gather evidence A.', 'done', { summary: 'summary of s1' }),
      step('s2', 'researcher', 'Gather evidence B.', 'running'),
      step('s3', 'analyst', 'Weigh A against B.', 'pending', { dependsOn: ['s1', 's2'] }),
    ],
    usage: { inputTokens: 1234, outputTokens: 567, byAgent: {} },
    audit: [],
    ...extra,
  };
}

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;?]*[A-Za-z]`, 'g');
const strip = (text: string): string => text.replace(ANSI, '');

/**
 * What a terminal shows after `written`: printable text overwrites at the cursor, `\n` goes to the
 * start of the next row (a TTY's output translation), and the escape sequences the view uses move
 * the cursor up (`A`) and erase to the end of the line (`K`) or of the screen (`J`). Fails on any
 * other sequence, so the view cannot rely on something this does not check.
 */
function screen(written: string): { rows: string[]; cursorVisible: boolean } {
  const rows: string[] = [''];
  let row = 0;
  let col = 0;
  let cursorVisible = true;
  const put = (ch: string): void => {
    const text = rows[row]!.padEnd(col);
    rows[row] = text.slice(0, col) + ch + text.slice(col + 1);
    col++;
  };
  for (let i = 0; i < written.length; i++) {
    const ch = written[i]!;
    if (ch === ESC) {
      const m = /^\[(\??)(\d*)([A-Za-z])/.exec(written.slice(i + 1));
      if (!m) throw new Error(`unexpected escape at ${i}: ${JSON.stringify(written.slice(i, i + 10))}`);
      i += m[0].length;
      const [, priv, n, cmd] = m;
      if (priv === '?' && (n === '25' || n === '2026')) {
        if (n === '25') cursorVisible = cmd === 'h';
      } else if (cmd === 'A') row = Math.max(0, row - Number(n || 1));
      else if (cmd === 'K') rows[row] = rows[row]!.slice(0, col);
      else if (cmd === 'J') {
        rows[row] = rows[row]!.slice(0, col);
        rows.length = row + 1;
      } else if (cmd !== 'm') throw new Error(`unexpected sequence ${m[0]}`);
    } else if (ch === '\n') {
      row++;
      col = 0;
      while (rows.length <= row) rows.push('');
    } else if (ch === '\r') col = 0;
    else put(ch);
  }
  while (rows.length && rows.at(-1) === '') rows.pop();
  return { rows: rows.map((r) => r.trimEnd()), cursorVisible };
}

class FakeTerminal implements TerminalLike {
  isTTY = true;
  written = '';
  private listeners: (() => void)[] = [];
  constructor(
    public columns = 80,
    public rows = 40,
    private readonly colors = false,
  ) {}
  write(chunk: string): boolean {
    this.written += chunk;
    return true;
  }
  hasColors(): boolean {
    return this.colors;
  }
  on(_event: 'resize', listener: () => void): void {
    this.listeners.push(listener);
  }
  off(_event: 'resize', listener: () => void): void {
    this.listeners = this.listeners.filter((l) => l !== listener);
  }
  resize(columns: number): void {
    this.columns = columns;
    for (const l of this.listeners) l();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The frame

describe('renderFrame', () => {
  test('a task in execution: phase, progress bar, each step with agent, state and question, tokens', () => {
    const frame = renderFrame(status(), { width: 80 });
    expect(frame).toEqual([
      '⠋ research-demo  executing  gated',
      '  question: How do A and B compare?',
      `  [${'█'.repeat(13)}${'▓'.repeat(14)}${'░'.repeat(13)}] 1/3 done · 1 running`,
      '  ✓ s1  researcher  done     Gather evidence A.',
      '  ● s2  researcher  running  Gather evidence B.',
      '  · s3  analyst     pending  Weigh A against B.',
      '  tokens: 1,234 in · 567 out',
    ]);
  });

  test('failed and skipped steps are counted apart, and say why', () => {
    const s = status({
      steps: [
        step('s1', 'researcher', 'Gather evidence A.', 'done'),
        step('s2', 'researcher', 'Gather evidence B.', 'skipped', { error: 'failed twice' }),
        step('s3', 'analyst', 'Weigh A against B.', 'failed', { error: 'model overloaded' }),
        step('s4', 'analyst', 'Sum up.', 'running', { attempt: 2 }),
      ],
    });
    const frame = renderFrame(s, { width: 100 });
    expect(frame[2]).toBe(
      `  [${'█'.repeat(10)}${'▒'.repeat(10)}${'▒'.repeat(10)}${'▓'.repeat(10)}] 1/4 done · 1 skipped · 1 failed · 1 running`,
    );
    expect(frame.slice(3, 7)).toEqual([
      '  ✓ s1  researcher  done     Gather evidence A.',
      '  ↷ s2  researcher  skipped  Gather evidence B. — failed twice',
      '  ✗ s3  analyst     failed   Weigh A against B. — model overloaded',
      '  ● s4  analyst     running  (attempt 2) Sum up.',
    ]);
  });

  test('a decomposed step shows its child task and the child steps beneath it', () => {
    const childId = 'research-demo/step-big';
    const parent = status({
      steps: [
        step('big', 'researcher', 'A large sub-question.', 'running', {
          decompose: true,
          childWorkflowId: childId,
        }),
        step('s2', 'analyst', 'Weigh it.', 'pending'),
      ],
    });
    const child = status({
      workflowId: childId,
      depth: 1,
      steps: [
        step('s1', 'researcher', 'Gather evidence A.', 'done'),
        step('s2', 'analyst', 'Weigh A against B.', 'running'),
      ],
    });
    const frame = renderFrame(parent, { width: 90, children: new Map([[childId, child]]) });
    expect(frame.slice(3, 8)).toEqual([
      '  ● big  researcher  running  ⤷ A large sub-question.',
      '      ↳ executing · 1/2 done · 1 running · child research-demo/step-big',
      '      ✓ s1  researcher  done     Gather evidence A.',
      '      ● s2  analyst     running  Weigh A against B.',
      '  · s2   analyst     pending  Weigh it.',
    ]);
    // Before the child answers, the step names it.
    expect(renderFrame(parent, { width: 90 })[4]).toBe('      ↳ child research-demo/step-big');
  });

  test('tokens with cache figures and estimated cost when the status has them, and nothing made up when not', () => {
    const usage = { inputTokens: 1000, outputTokens: 200, byAgent: {} };
    const tokens = (s: TaskStatus) => renderFrame(s, { width: 120 }).find((l) => l.startsWith('  tokens:'));
    expect(tokens(status({ usage }))).toBe('  tokens: 1,000 in · 200 out');
    expect(
      tokens(
        status({
          usage: { ...usage, cacheReadInputTokens: 8000, cacheCreationInputTokens: 1200, costUsd: 0.0123 },
        }),
      ),
    ).toBe('  tokens: 1,000 in · 200 out · cache 8,000 read / 1,200 written · est. cost $0.0123');
    expect(tokens(status({ usage: { ...usage, costUsd: 12.5 } }))).toBe(
      '  tokens: 1,000 in · 200 out · est. cost $12.50',
    );
    // Unknown (a model without a price) is said, never shown as $0.
    expect(tokens(status({ usage: { ...usage, costUsd: null } }))).toBe(
      '  tokens: 1,000 in · 200 out · est. cost unknown',
    );
  });

  test('the pending gate: approvals so far, who may still decide, the deadline, and how to decide', () => {
    const s = status({
      phase: 'awaiting-plan-approval',
      steps: [],
      plan: DEFAULT_PLAN,
      pendingGate: {
        gate: 'plan',
        since: '2026-11-24T10:00:00.000Z',
        stage: 'primary',
        approvers: ['alice', 'bob', 'carol'],
        quorum: 2,
        approvals: [{ by: 'alice', at: '2026-11-24T10:01:00.000Z' }],
        deadline: '2026-11-25T10:00:00.000Z',
        reminders: [],
      },
    });
    const frame = renderFrame(s, { width: 120 });
    // Before execution the plan's steps show as pending.
    expect(frame).toContain(`  [${'░'.repeat(40)}] 0/3 done`);
    expect(frame).toContain('  · s1  researcher  pending  Gather evidence A.');
    expect(frame.slice(-2)).toEqual([
      '  gate: plan (primary) 1 of 2 approval(s); may decide: bob, carol; deadline 2026-11-25T10:00:00.000Z',
      '    npm run baton -- approve|reject|request-changes research-demo',
    ]);
  });

  test('fits the terminal: every line within the width, long text clipped with …, wide characters counted twice', () => {
    const s = status({
      question: `Wie verhalten sich Festkörperbatterien zu Lithium-Ionen? ${'電池'.repeat(30)}`,
      steps: [step('s1', 'researcher', 'x'.repeat(200), 'running')],
      error: 'e'.repeat(300),
    });
    for (const width of [20, 40, 80, 200]) {
      const widest = Math.max(...renderFrame(s, { width }).map(displayWidth));
      expect([width, widest <= width - 1]).toEqual([width, true]);
    }
    const narrow = renderFrame(s, { width: 40 });
    expect(narrow[1]).toBe('  question: Wie verhalten sich Festkör…');
    expect(clip('電池電池', 5)).toBe('電池…');
    expect(displayWidth('電池…')).toBe(5);
    // Colors do not count: the visible text is the same.
    const colored = renderFrame(s, { width: 40, color: true });
    expect(colored.join('')).toMatch(ANSI);
    expect(colored.map(strip)).toEqual(narrow);
  });

  test('fits the terminal height: the steps that matter most stay, the rest are counted', () => {
    const steps = Array.from({ length: 30 }, (_, i) =>
      step(
        `s${i + 1}`,
        'researcher',
        `Question ${i + 1}.`,
        i < 20 ? 'done' : i === 25 ? 'running' : 'pending',
      ),
    );
    const frame = renderFrame(status({ steps }), { width: 80, height: 10 });
    expect(frame).toHaveLength(9);
    expect(frame).toContain('  ● s26  researcher  running  Question 26.');
    expect(frame).toContain('   … 26 more steps (20 done, 6 pending)');
  });

  test('text from a model cannot reach the terminal as escape sequences', () => {
    const evil = `Ignore this${ESC}[2J${ESC}]0;owned\u0007 and\u202e this\nnext line`;
    const frame = renderFrame(status({ question: evil, steps: [step('s1', 'researcher', evil, 'done')] }), {
      width: 200,
    });
    expect(frame.join('\n')).not.toContain(ESC);
    // Escape sequences go whole (no `[2J` tail); the bidi override is shown, not obeyed (contract/text.ts).
    expect(frame[1]).toBe('  question: Ignore this and⟨U+202E⟩ this next line');
    expect(
      changeLines(undefined, status({ steps: [step('s1', 'r', 'q', 'done', { summary: evil })] })).join(''),
    ).not.toContain(ESC);
    expect(summaryLine(`  a\n\n  b ${'x'.repeat(300)}`)).toHaveLength(200);
  });

  test("a running step's live words: dimmed under it, its newest words in at most two rows of the width; a done step shows none", () => {
    const words = `${'early words '.repeat(40)}the newest words`;
    const live = new Map([
      [
        'research-demo',
        [
          { agent: 'researcher', step: 's2', words, chars: 2000 },
          { agent: 'researcher', step: 's1', words: 'stale', chars: 5 },
        ],
      ],
    ]);
    const frame = renderFrame(status(), { width: 60, live });
    const at = frame.findIndex((l) => l.includes('s2'));
    const rows = frame.slice(at + 1, at + 3);
    expect(rows[0]).toMatch(/^ {6}» …/);
    expect(rows[1]).toMatch(/^ {8}.*the newest words$/);
    expect(frame[at + 3]).toContain('s3');
    expect(frame.join('\n')).not.toContain('stale');
    for (const l of frame) expect(displayWidth(l)).toBeLessThanOrEqual(59);
    const colored = renderFrame(status(), { width: 60, live, color: true });
    expect(colored[at + 1]).toMatch(new RegExp(`^${ESC}\\[2m`));
    // Closed: no words.
    expect(renderFrame(status({ phase: 'completed' }), { width: 60, live }).join('')).not.toContain('newest');
  });
});

// ---------------------------------------------------------------------------------------------------------
// Plain lines

describe('changeLines (logs, pipes, CI)', () => {
  test('prints what changed, and nothing when nothing did', () => {
    const planned = status({ phase: 'awaiting-plan-approval', plan: DEFAULT_PLAN, steps: [] });
    expect(changeLines(undefined, planned)).toEqual([
      'phase: awaiting-plan-approval',
      'plan (3 steps): Two independent gathering steps, then an analysis of both.',
      '  s1 [researcher]: Gather evidence A.',
      '  s2 [researcher]: Gather evidence B.',
      '  s3 [analyst] after s1, s2: Weigh A against B.',
    ]);
    expect(changeLines(planned, planned)).toEqual([]);
    const running = status({ plan: DEFAULT_PLAN });
    expect(changeLines(planned, running)).toEqual([
      'phase: executing',
      '  step s1 [researcher] done: summary of s1',
      '  step s2 [researcher] running',
      '  step s3 [analyst] pending',
      '  progress: 1/3 done · 1 running',
    ]);
    const failed = status({
      plan: DEFAULT_PLAN,
      steps: [running.steps[0]!, { ...running.steps[1]!, state: 'skipped' }, running.steps[2]!],
      usage: { inputTokens: 1300, outputTokens: 600, costUsd: 0.02, byAgent: {} },
    });
    expect(changeLines(running, failed)).toEqual([
      '  step s2 [researcher] skipped',
      '  progress: 1/3 done · 1 skipped',
      '  tokens so far: 1,300 in, 600 out, est. cost $0.0200',
    ]);
  });

  test("children's steps as s2/s1, and the gate when asked for", () => {
    const childId = 'research-demo/step-s2';
    const before = status({
      steps: [
        step('s1', 'researcher', 'A.', 'done'),
        step('s2', 'analyst', 'B.', 'running', { childWorkflowId: childId }),
      ],
    });
    const child = status({ workflowId: childId, steps: [step('s1', 'researcher', 'B1.', 'running')] });
    const childDone = status({ workflowId: childId, steps: [step('s1', 'researcher', 'B1.', 'done')] });
    expect(
      changeLines(before, before, {
        prevChildren: new Map([[childId, child]]),
        children: new Map([[childId, childDone]]),
      }),
    ).toEqual(['  step s2/s1 [researcher] done']);
    const gated = status({
      phase: 'awaiting-report-approval',
      pendingGate: {
        gate: 'report',
        since: 'x',
        stage: 'primary',
        approvers: ['*'],
        quorum: 1,
        approvals: [],
        reminders: [],
      },
    });
    expect(changeLines(status(), gated, { gate: true })).toEqual([
      'phase: awaiting-report-approval',
      '  waiting at the report gate (primary) for 1 approval(s) from *',
    ]);
    expect(changeLines(status(), gated)).toEqual(['phase: awaiting-report-approval']);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The view on a terminal

describe('createView', () => {
  test('on a TTY: redraws in place, keeps log lines above the frame, writes nothing when nothing changed', () => {
    const terminal = new FakeTerminal(80, 40);
    const lines: string[] = [];
    const view = createView({ terminal, print: (l) => lines.push(l) });
    view.update(status({ phase: 'planning', steps: [] }));
    expect(terminal.written.startsWith(`${ESC}[?2026h${ESC}[?25l`)).toBe(true);
    view.update(status());
    view.log('  approve accepted: approved (1 of 1 approvals)');
    // Fewer steps than before: the old frame's last lines must go.
    const last = status({
      steps: [step('s1', 'researcher', 'Gather evidence A.', 'done')],
      audit: [
        {
          at: '2026-11-24T10:00:00.000Z',
          gate: 'plan',
          event: 'decision',
          decision: 'approve',
          by: 'alice',
          via: 'update',
          accepted: true,
        },
      ],
    });
    view.update(last);
    const shown = screen(terminal.written);
    // Decisions scroll above the frame, as history; the frame shows the state now.
    expect(shown.rows).toEqual([
      '  approve accepted: approved (1 of 1 approvals)',
      '  audit: 2026-11-24T10:00:00.000Z plan: approve by alice via update: accepted',
      ...renderFrame(last, { width: 80, height: 40, tick: 3 }),
    ]);
    expect(lines).toEqual([]);
    expect(shown.cursorVisible).toBe(false);
    // Redraws go up over the frame; they never clear the screen.
    expect(terminal.written).toContain(`${ESC}[7A`);
    expect(terminal.written).not.toContain(`${ESC}[2J`);

    view.close();
    expect(screen(terminal.written).cursorVisible).toBe(true);
    const length = terminal.written.length;
    view.update(status());
    expect(terminal.written).toHaveLength(length);
  });

  test('a narrower terminal wraps the old frame: the redraw goes up over all of it', () => {
    const terminal = new FakeTerminal(80, 40);
    const view = createView({ terminal, print: () => undefined });
    const s = status({ question: 'q'.repeat(70) });
    view.update(s);
    const before = terminal.written.length;
    terminal.resize(60);
    const redraw = terminal.written.slice(before);
    // Lines wider than 60 columns (the question, the bar) now take two rows each.
    const old = renderFrame(s, { width: 80, height: 40, tick: 1 });
    const rows = old.reduce((n, l) => n + Math.ceil(displayWidth(l) / 60), 0);
    expect(rows).toBe(old.length + 2);
    expect(redraw).toContain(`${ESC}[${rows}A`);
    expect(
      strip(redraw)
        .split('\n')
        .every((l) => displayWidth(l) <= 59),
    ).toBe(true);
    view.close();
  });

  test('suspend leaves the frame on screen for a prompt below it; the next update draws a new frame', () => {
    const terminal = new FakeTerminal(80, 40);
    const view = createView({ terminal, print: () => undefined });
    view.update(status());
    view.suspend();
    expect(screen(terminal.written).cursorVisible).toBe(true);
    terminal.write('plan gate, deciding as alice: [a]pprove, [r]eject or [c]hange request? a\n');
    view.update(status({ phase: 'synthesizing' }));
    const rows = screen(terminal.written).rows;
    expect(rows.filter((r) => r.includes('research-demo'))).toHaveLength(2);
    expect(rows).toContain('plan gate, deciding as alice: [a]pprove, [r]eject or [c]hange request? a');
    view.close();
  });

  test('not a TTY: plain lines, only when something changed', () => {
    const lines: string[] = [];
    const writes: string[] = [];
    const view = createView({
      terminal: { isTTY: false, write: (w: string) => writes.push(w) },
      print: (l) => lines.push(l),
    });
    view.update(status());
    const first = lines.length;
    view.update(status());
    view.note('the task does not answer');
    view.note('the task does not answer');
    expect(lines.slice(first)).toEqual(['  (the task does not answer)']);
    expect(writes).toEqual([]);
    view.close();
  });

  test("not a TTY: a running step's live words, one clipped line each time they change", () => {
    const lines: string[] = [];
    const view = createView({ print: (l) => lines.push(l) });
    const words = (text: string) =>
      new Map([['research-demo', [{ agent: 'researcher', step: 's2', words: text, chars: text.length }]]]);
    view.update(status(), undefined, words('First words.'));
    expect(lines).toContain('  words s2 [researcher]: First words.');
    const before = lines.length;
    view.update(status(), undefined, words('First words.'));
    expect(lines.length).toBe(before);
    view.update(status(), undefined, words(`${'more '.repeat(100)}and the newest.`));
    expect(lines.slice(before)).toHaveLength(1);
    expect(lines[before]).toMatch(/^ {2}words s2 \[researcher\]: …(ore )?more .*and the newest\.$/);
    expect(displayWidth(lines[before]!)).toBeLessThanOrEqual(120);
    view.close();
  });
});

test('childStatuses asks running children (and theirs) again, keeps finished ones, and survives one that does not answer', async () => {
  const parent = status({
    steps: [
      step('a', 'researcher', 'A.', 'running', { childWorkflowId: 'p/step-a' }),
      step('b', 'researcher', 'B.', 'done', { childWorkflowId: 'p/step-b' }),
      step('c', 'researcher', 'C.', 'running', { childWorkflowId: 'p/step-c' }),
    ],
  });
  const a = status({
    workflowId: 'p/step-a',
    steps: [step('x', 'r', 'X.', 'running', { childWorkflowId: 'p/step-a/step-x' })],
  });
  const ax = status({ workflowId: 'p/step-a/step-x', steps: [] });
  const b = status({ workflowId: 'p/step-b', phase: 'completed', steps: [] });
  const asked: string[] = [];
  const query = (id: string): Promise<TaskStatus> => {
    asked.push(id);
    const found = { 'p/step-a': a, 'p/step-a/step-x': ax, 'p/step-b': b }[id];
    return found ? Promise.resolve(found) : Promise.reject(new Error('no answer'));
  };
  const first = await childStatuses(parent, query);
  expect([...first.keys()].sort()).toEqual(['p/step-a', 'p/step-a/step-x', 'p/step-b']);
  asked.length = 0;
  await childStatuses(parent, query, first);
  expect(asked.sort()).toEqual(['p/step-a', 'p/step-a/step-x', 'p/step-c']);
});

// ---------------------------------------------------------------------------------------------------------
// watch, on the test server

describe('npm run baton -- watch', () => {
  const ctx = useTestServer();

  interface Watching {
    out: string[];
    err: string[];
    code: Promise<number>;
  }

  function watch(workflowId: string, terminal?: FakeTerminal): Watching {
    const run: Watching = { out: [], err: [], code: Promise.resolve(-1) };
    run.code = runCli(['watch', workflowId], {
      client: ctx.client,
      env: {},
      out: (l) => run.out.push(l),
      err: (l) => run.err.push(l),
      terminal,
      pollMs: 50,
    });
    return run;
  }

  /**
   * The summary of each activity of a workflow, in order, decoded from its payload: on its
   * ActivityTaskScheduled event, or on its marker for a local activity (bookkeeping since v18).
   */
  async function activitySummaries(handle: WorkflowHandle): Promise<string[]> {
    const history = await handle.fetchHistory();
    return (history.events ?? [])
      .filter(
        (e) =>
          e.activityTaskScheduledEventAttributes ||
          e.markerRecordedEventAttributes?.markerName === 'core_local_activity',
      )
      .map((e) => defaultPayloadConverter.fromPayload<string>(e.userMetadata!.summary as Payload));
  }

  test('follows a gated task from plan to report, prints the gate and who may decide, ends with the report; every activity has a summary', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options);
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('watch'),
        args: [{ question: 'How do A and B compare?', playbook: 'gated' }],
      });
      const run = watch(handle.workflowId);
      const sees = (text: string) =>
        pollUntil(
          () => Promise.resolve(run.out),
          (out) => out.some((l) => l.includes(text)),
          `watch to print "${text}"`,
        );
      await sees('waiting at the plan gate (primary) for 1 approval(s) from alice, bob');
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'alice', gate: 'plan' }] });
      await sees('waiting at the report gate');
      await handle.executeUpdate(decide, { args: [{ decision: 'approve', by: 'bob', gate: 'report' }] });
      expect(await run.code).toBe(0);
      expect(run.err).toEqual([]);
      expect(run.out).toEqual(
        expect.arrayContaining([
          'phase: awaiting-plan-approval',
          '  s3 [analyst] after s1, s2: Weigh A against B.',
          '  step s1 [researcher] done: summary of s1',
          '  step s3 [analyst] done: summary of s3',
          '  progress: 3/3 done',
          'phase: completed',
        ]),
      );
      expect(run.out.at(-2)).toBe('outcome: completed');
      expect(run.out.at(-1)).toMatch(/^Report: .*\.md$/);

      // What the Web UI shows in the timeline: each specialist step with its agent and question.
      expect(await activitySummaries(handle)).toEqual([
        'config · playbook gated',
        'plan · lead',
        's1 · researcher: Gather evidence A.',
        's2 · researcher: Gather evidence B.',
        's3 · analyst: Weigh A against B.',
        'synthesize · lead',
        'citations · check the draft against the retrieval record',
        'publish · draft report',
        'publish · final report',
      ]);
    });
  });

  test('on a terminal: a decomposed step shows its child steps live; the child workflow carries the step and question', async () => {
    const top = {
      rationale: 'One big step.',
      steps: [
        { id: 'big', agent: 'researcher', question: 'A large sub-question.', dependsOn: [], decompose: true },
      ],
    };
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options, {
      plan: (input) => ({
        valid: true,
        plan: input.limits.depth === 0 ? top : DEFAULT_PLAN,
        usage: { inputTokens: 1, outputTokens: 1 },
        model: 'm',
      }),
      step: (input) => (input.step.id === 's3' ? held : undefined),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('watch-tty'),
        args: [{ question: 'A big question', playbook: 'open' }],
      });
      const childId = `${handle.workflowId}/step-big`;
      const terminal = new FakeTerminal(100, 40);
      const run = watch(handle.workflowId, terminal);
      const live = await pollUntil(
        () => Promise.resolve(screen(terminal.written).rows),
        (rows) => rows.some((r) => r.includes('● s3  analyst     running  Weigh A against B.')),
        'the child steps on screen',
      );
      expect(live).toEqual(
        expect.arrayContaining([
          '  ● big  researcher  running  ⤷ A large sub-question.',
          `      ↳ executing · 2/3 done · 1 running · child ${childId}`,
          '      ✓ s1  researcher  done     Gather evidence A.',
        ]),
      );
      release();
      expect(await run.code).toBe(0);
      expect(run.out).toEqual(['outcome: completed', expect.stringMatching(/^Report: .*\.md$/)]);
      const final = screen(terminal.written);
      expect(final.cursorVisible).toBe(true);
      expect(final.rows[0]).toMatch(/^✓ watch-tty-\S+ {2}completed {2}open$/);
      expect(final.rows).toContain(`  [${'█'.repeat(40)}] 1/1 done`);
      // One frame on screen: every redraw went over the one before.
      expect(final.rows.filter((r) => r.includes(`${handle.workflowId}  `))).toHaveLength(1);
      expect(final.rows.at(-1)).toMatch(/^ {2}report: .*\.md$/);

      const child = ctx.client.workflow.getHandle(childId);
      const described = await child.describe();
      expect(await described.staticSummary()).toBe('big · researcher: A large sub-question.');
      expect(await described.staticDetails()).toContain('**Question:** A large sub-question.');
      expect(await activitySummaries(child)).toEqual([
        // The child has its snapshot checked before any model call (v8).
        expect.stringMatching(/^config · check snapshot sha256:[0-9a-f]{64}$/),
        'plan · lead',
        's1 · researcher: Gather evidence A.',
        's2 · researcher: Gather evidence B.',
        's3 · analyst: Weigh A against B.',
        'synthesize · lead',
      ]);
    });
  });

  test('a task that fails ends watch with exit 1 and why; an unknown id is named', async () => {
    const options = await tempActivityOptions();
    const { activities } = fakeModelActivities(options, {
      plan: () => ({
        valid: false,
        problems: ['no plan today'],
        usage: { inputTokens: 1, outputTokens: 1 },
        model: 'm',
      }),
    });
    await withWorker(ctx, activities, async (taskQueue) => {
      const handle = await ctx.client.workflow.start(researchTask, {
        taskQueue,
        workflowId: uniqueId('watch-fail'),
        args: [{ question: 'Will this fail?', playbook: 'open' }],
      });
      const run = watch(handle.workflowId);
      expect(await run.code).toBe(1);
      expect(run.out).toContain('phase: failed');
      expect(run.err).toEqual([expect.stringMatching(/^outcome: failed: .*no plan today/)]);
      await waitForStatus(handle, (s) => s.phase === 'failed', 'the failed phase');
    });
    const missing = uniqueId('no-such-task');
    const run = watch(missing);
    expect(await run.code).toBe(1);
    expect(run.err).toEqual([`error: no task with workflow id "${missing}" on this namespace (default)`]);
  });
});
