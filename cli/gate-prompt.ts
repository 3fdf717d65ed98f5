/**
 * What `npm start` does when its task waits at a gate: approve at once (`--auto-approve`), ask the
 * person at the terminal (approve, reject or request changes), or, with no terminal to ask, say once
 * how to decide from another one. At the report gate it shows the draft at a glance (its title,
 * summary and size, and the commands that print all of it or what changed), or all of it with `--full`.
 */
import type { Client } from '@temporalio/client';
import { createInterface } from 'node:readline/promises';
import { readDraft } from '../activities/report';
import type { Stores } from '../activities/store';
import { decideTask, draftOutline, formatDecision } from '../client';
import type { DecideRequest, Gate, TaskStatus } from '../contract/messages';
import { safeBlock } from '../contract/text';
import { sanitize, summaryLine } from '../lib/text';
import { formatPendingGate, formatRound } from './format';
import type { View } from './live';

export interface GatePromptOptions {
  client: Client;
  workflowId: string;
  /** Who decides: BATON_APPROVER, else the user name. */
  me: string;
  autoApprove: boolean;
  /** Whether a person can answer on this terminal (stdin is a TTY). */
  interactive: boolean;
  /** The workers' store: the draft report is read from there. */
  stores: Stores;
  /** Print the whole draft at the report gate (`npm start --full`), not its summary. */
  full?: boolean;
  view: View;
}

/** Sends a decision; shows the workflow's answer. Answers whether it was accepted. */
async function send(options: GatePromptOptions, request: DecideRequest): Promise<boolean> {
  const outcome = await decideTask(options.client, options.workflowId, request);
  options.view.log(`  ${request.decision} ${formatDecision(outcome)}`);
  return outcome.accepted;
}

/** One readline per question: between prompts the terminal belongs to the live view. */
async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
}

/**
 * What the person at the terminal reads before deciding: the pending gate and, at the report gate,
 * the draft, sanitized (contract/text.ts) like every other surface.
 */
export function gateLines(pending: NonNullable<TaskStatus['pendingGate']>, draft?: string): string[] {
  return [`  ${formatPendingGate(pending)}`, ...(draft !== undefined ? draftLines(draft) : [])];
}

/** The draft report between two rules, sanitized (contract/text.ts). */
export const draftLines = (draft: string): string[] => [
  '',
  '----- draft report -----',
  ...safeBlock(draft).split('\n'),
  '----- end of draft -----',
  '',
];

/** A workflow id as a shell word. */
const shellWord = (word: string): string =>
  /^[\w./:@=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;

/** A size in bytes as people read it: `812 bytes`, `8.1 kB`, `1.2 MB`. */
export const formatBytes = (bytes: number): string =>
  bytes < 1000
    ? `${bytes} bytes`
    : bytes < 1e6
      ? `${(bytes / 1e3).toFixed(1)} kB`
      : `${(bytes / 1e6).toFixed(1)} MB`;

/**
 * The draft at a glance: its title, summary and size, and the commands that print all of it (into
 * `$PAGER` when one is set) and, after a request for changes, what changed. Sanitized.
 */
export function draftSummaryLines(
  workflowId: string,
  draft: string,
  revised: boolean,
  pager: string | undefined = process.env.PAGER,
): string[] {
  const outline = draftOutline(draft);
  const id = shellWord(workflowId);
  const full = `npm run baton -- show --full ${id}`;
  return [
    '',
    `  Draft report${outline.title ? `: ${summaryLine(outline.title, 200)}` : ''}`,
    `  ${outline.words.toLocaleString('en-US')} words, ${outline.lines.toLocaleString('en-US')} lines, ${formatBytes(outline.bytes)}`,
    ...(outline.summary ? [`  Summary: ${summaryLine(outline.summary, 600)}`] : []),
    pager ? `  Read it all: ${full} | ${sanitize(pager)}` : `  Read it all: ${full}  (set PAGER to page it)`,
    ...(revised ? [`  What changed since the previous draft: npm run baton -- show --diff ${id}`] : []),
    '',
  ];
}

/** At the plan gate, a research round's delta: the lead's reason and the steps it adds to the plan. */
export function deltaLines(s: TaskStatus): string[] {
  const round = s.rounds?.at(-1);
  if (round?.decision !== 'pending') return [];
  return [
    `  ${formatRound(round)}`,
    ...s.steps
      .filter((x) => x.round === round.n)
      .map(
        (x) =>
          `    + ${summaryLine(`${x.id} [${x.agent}]${x.dependsOn.length ? ` after ${x.dependsOn.join(', ')}` : ''}: ${x.question}`, 300)}`,
      ),
    `  (added to the plan's ${s.steps.filter((x) => x.round !== round.n).length} step(s); rejecting ends the rounds and the report is written from what exists)`,
  ];
}

/** What the person at the terminal reads at a gate: the pending gate and, at the report gate, the draft at a glance or all of it. */
async function gateView(options: GatePromptOptions, s: TaskStatus): Promise<string[]> {
  const pending = s.pendingGate!;
  if (pending.gate !== 'report' || !s.report) return [...gateLines(pending), ...deltaLines(s)];
  const draft = await readDraft(options.stores, s.report);
  return options.full
    ? gateLines(pending, draft)
    : [
        `  ${formatPendingGate(pending)}`,
        ...draftSummaryLines(options.workflowId, draft, s.revisions.report > 0),
      ];
}

/** Asks at the terminal until the workflow accepts a decision. */
async function decideInTerminal(options: GatePromptOptions, s: TaskStatus): Promise<void> {
  const { me, view } = options;
  // The live frame stays on screen as it is, above the draft and the prompt.
  view.suspend();
  const gate = s.pendingGate!.gate;
  for (const line of await gateView(options, s)) console.log(line);
  for (;;) {
    const answer = (
      await ask(`${gate} gate, deciding as ${sanitize(me)}: [a]pprove, [r]eject or [c]hange request? `)
    )
      .trim()
      .toLowerCase();
    let request: DecideRequest | undefined;
    if (answer === 'a' || answer === 'approve') request = { decision: 'approve', by: me, gate };
    if (answer === 'r' || answer === 'reject') request = { decision: 'reject', by: me, gate };
    if (answer === 'c' || answer === 'change') {
      const comment = (await ask('What should change? ')).trim();
      if (comment) request = { decision: 'requestChanges', by: me, gate, comment };
    }
    if (request && (await send(options, request))) return;
  }
}

/**
 * The step `npm start` takes at each status it shows. After deciding at a gate it waits, without
 * asking again, while that gate still needs others' approvals (a quorum). Throws when
 * `--auto-approve` is refused: the approver is not one of that gate's.
 */
export function gatePrompt(options: GatePromptOptions): (s: TaskStatus) => Promise<void> {
  const { me, view } = options;
  let decidedAt: Gate | undefined;
  let toldHowToApprove: string | undefined;
  return async (s) => {
    const pending = s.pendingGate;
    if (!pending) return;
    const gate = pending.gate;
    if (decidedAt === gate && pending.approvals.some((a) => a.by === me)) return;
    decidedAt = undefined;
    if (options.autoApprove) {
      // Approving is still a decision on the draft: one that cannot be read is not approved.
      if (gate === 'report' && s.report) await readDraft(options.stores, s.report);
      const request: DecideRequest = {
        decision: 'approve',
        by: me,
        gate,
        comment: 'approved with --auto-approve',
      };
      if (!(await send(options, request))) {
        throw new Error(
          `--auto-approve cannot decide as "${me}" here (set BATON_APPROVER to an approver of this gate)`,
        );
      }
      decidedAt = gate;
    } else if (options.interactive) {
      await decideInTerminal(options, s);
      decidedAt = gate;
    } else if (toldHowToApprove !== `${gate}@${pending.since}`) {
      // Once per opening of a gate: what is decided on, and how to decide.
      toldHowToApprove = `${gate}@${pending.since}`;
      for (const line of await gateView(options, s)) view.log(line);
      view.log(
        `Waiting at the ${gate} gate. Decide from another terminal:\n  npm run baton -- approve ${shellWord(options.workflowId)}   (or: temporal workflow signal --workflow-id ${options.workflowId} --name approve --input '{"by": "${me}", "gate": "${gate}"}')`,
      );
    }
  };
}
