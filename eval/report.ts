/**
 * What an evaluation run records (`results.json`), its summary per mode, and the Markdown table
 * (`results.md`). Pure functions: the harness writes the files.
 */
import { citationShare, type CitationValidity } from './citations';
import { isBatonMode, MODE_LABELS, type Answer, type Mode } from './modes';
import type { Usage } from './model';
import { QUESTION_KINDS, type QuestionKind } from './questions';
import { CRITERIA, CRITERION_INFO, type Criterion, type Judgement } from './rubric';

/** What the citation figure is, under the averages. */
export const CITATION_VALIDITY_NOTE =
  "the share of an answer's distinct cited sources (listed sources and links in its text) that a tool really returned during that run, counted, not judged; averaged over the answers that cite anything, with the sources backed and cited in all. Baton's modes: the task's citation pass (its provenance). The single agent: its answer against the web search and fetch results of its own call. One call has no tools, so nothing it cites is backed (0%). A source listed without an address is cited and never backed. It says whether a source was retrieved, not whether it supports the claim: that is the judge's citation score.";

/** Said at the top of the output, the table and the chart whenever the stand-in answered. */
export const OFFLINE_WARNING =
  "OFFLINE STAND-IN RUN: the scores are meaningless. No ANTHROPIC_API_KEY was set, so every answer and every judge score comes from Baton's offline stand-in model, whose output is placeholder text. This run exercised the harness (the modes, Temporal, judging, token counting, timing), not the quality of any answer. Set ANTHROPIC_API_KEY to measure.";

/**
 * Said under the citation figures of an offline run: they are counted, not judged, so they are
 * exact, but of the stand-in's output.
 */
export const OFFLINE_CITATIONS_NOTE =
  "Offline, citation validity is still counted exactly, but of the stand-in's output: what it cited against what its tools returned in the run. The stand-in runs no searches unless a test scripts them and cites placeholder example.invalid pages, so its figures show that the counting works, not how any mode cites.";

/** How one mode did on one question. */
export interface ModeResult {
  mode: Mode;
  ok: boolean;
  error?: string;
  /** From the start of the mode's work to its answer (judging not included). */
  wallMs: number;
  usage: Usage;
  totalTokens: number;
  /** Model calls made, retries included, when the mode knows them. */
  modelCalls?: number;
  models: string[];
  /** Baton only. */
  workflowId?: string;
  reportPath?: string;
  steps?: number;
  /** Baton only: research rounds whose steps ran. */
  roundsUsed?: number;
  answer?: Answer;
  /** Distinct cited sources and how many a tool returned in the run (eval/citations.ts); not judged. */
  citations?: CitationValidity;
  judgement?: Judgement;
  meanScore?: number;
  /** The judge's call: its tokens are not counted in the mode's. */
  judge?: { model?: string; attempts: number; usage: Usage; error?: string };
}

export interface QuestionResult {
  id: string;
  kind: QuestionKind;
  question: string;
  modes: ModeResult[];
}

/** Averages of one mode over the questions. `null`: nothing to average. */
export interface ModeSummary {
  mode: Mode;
  questions: number;
  answered: number;
  judged: number;
  scores: Record<Criterion, number | null>;
  mean: number | null;
  /** Over every run of the mode, failed ones included: what was spent. */
  avgTokens: number | null;
  totalTokens: number;
  avgWallMs: number | null;
  /** Estimated USD per question, when config prices every model every run used; otherwise null. */
  avgCostUsd: number | null;
  /** Mean score per question kind. */
  byKind: Record<QuestionKind, number | null>;
  /** Mean share of cited sources backed by a retrieval, over the answers that cite any (0 to 1). */
  citationValidity: number | null;
  /** Cited sources and backed ones, summed over the answers counted. */
  cited: number;
  backed: number;
  /** Baton modes: mean research rounds used per answered question; null for the others. */
  avgRounds: number | null;
}

export interface EvalResults {
  kind: 'baton-eval';
  /** 2: the baton-rounds mode, citation validity and rounds used. */
  version: 2;
  startedAt: string;
  finishedAt: string;
  /** True when the stand-in answered: the scores mean nothing. */
  offline: boolean;
  warning?: string;
  settings: {
    questionsFile: string;
    modes: Mode[];
    playbook: string;
    /** The baton-rounds mode's generated playbook and the config folder copy it is in (relative to the results). */
    rounds?: {
      playbook: string;
      max: number;
      approval: 'none';
      configDir: string;
      configDigest: string;
    };
    judgeModel: string;
    /** Model of the one-call mode, agent and model of the single-agent mode. */
    oneCallModel: string;
    singleAgent: { agent: string; model: string };
    model: string;
    temporal?: string;
  };
  questions: QuestionResult[];
  summary: ModeSummary[];
}

const average = (values: number[]): number | null =>
  values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;

/** The per-mode averages, in the order of `modes`. */
export function summarize(questions: QuestionResult[], modes: readonly Mode[]): ModeSummary[] {
  return modes.map((mode) => {
    const runs = questions.flatMap((q) => q.modes.filter((m) => m.mode === mode).map((m) => ({ q, m })));
    const judged = runs.filter(({ m }) => m.judgement);
    const citing = runs.flatMap(({ m }) => (m.citations && m.citations.cited > 0 ? [m.citations] : []));
    return {
      mode,
      questions: runs.length,
      answered: runs.filter(({ m }) => m.ok).length,
      judged: judged.length,
      scores: Object.fromEntries(
        CRITERIA.map((c) => [c, average(judged.map(({ m }) => m.judgement![c].score))]),
      ) as Record<Criterion, number | null>,
      mean: average(judged.map(({ m }) => m.meanScore!)),
      avgTokens: average(runs.map(({ m }) => m.totalTokens)),
      totalTokens: runs.reduce((sum, { m }) => sum + m.totalTokens, 0),
      avgWallMs: average(runs.map(({ m }) => m.wallMs)),
      avgCostUsd: runs.every(({ m }) => typeof m.usage.costUsd === 'number')
        ? average(runs.map(({ m }) => m.usage.costUsd as number))
        : null,
      byKind: Object.fromEntries(
        QUESTION_KINDS.map((k) => [
          k,
          average(judged.filter(({ q }) => q.kind === k).map(({ m }) => m.meanScore!)),
        ]),
      ) as Record<QuestionKind, number | null>,
      citationValidity: average(citing.map((c) => citationShare(c)!)),
      cited: citing.reduce((sum, c) => sum + c.cited, 0),
      backed: citing.reduce((sum, c) => sum + c.backed, 0),
      avgRounds: isBatonMode(mode)
        ? average(runs.filter(({ m }) => m.ok).map(({ m }) => m.roundsUsed ?? 0))
        : null,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Formatting

const DASH = '—';

export const fmtScore = (v: number | null | undefined): string =>
  v === null || v === undefined ? DASH : v.toFixed(1);

/** A share (0 to 1) as a whole percentage. */
export const fmtShare = (v: number | null | undefined): string =>
  v === null || v === undefined ? DASH : `${Math.round(v * 100)}%`;

/** One answer's citation figure: `50% (1/2)`, or why there is none. */
const fmtCitations = (c: CitationValidity | undefined): string =>
  !c ? DASH : c.cited === 0 ? 'none cited' : `${fmtShare(citationShare(c))} (${c.backed}/${c.cited})`;

export const fmtTokens = (v: number | null | undefined): string =>
  v === null || v === undefined ? DASH : Math.round(v).toLocaleString('en-US');

export function fmtDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return DASH;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Text safe inside a Markdown table cell: one line, pipes escaped. */
export function cell(text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/\\/g, '\\\\').replace(/\|/g, '\\|');
}

const clip = (text: string, max: number): string =>
  text.length <= max ? text : `${text.slice(0, max - 1).trimEnd()}…`;

function table(header: string[], rows: string[][], align?: ('l' | 'r')[]): string {
  const sep = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

/** The Markdown report of a run: warning first when offline, then averages, kinds, per question rows, notes. */
export function renderMarkdown(results: EvalResults): string {
  const { settings } = results;
  const criteriaHeads = CRITERIA.map((c) => CRITERION_INFO[c].short);
  // Cost only when config prices the models: an unknown cost is never shown as a number.
  const costs = results.summary.some((s) => s.avgCostUsd !== null);
  // Rounds only when a mode could use them.
  const rounds = settings.modes.includes('baton-rounds');
  const out: string[] = ['# Baton evaluation: is multi-agent worth it?', ''];
  if (results.offline) out.push(`> **${OFFLINE_WARNING}**`, '');
  out.push(
    `Run ${results.startedAt} to ${results.finishedAt}: ${results.questions.length} question(s) from \`${settings.questionsFile}\`; ` +
      `modes ${settings.modes.map((m) => `\`${m}\``).join(', ')}; playbook \`${settings.playbook}\`` +
      (settings.rounds
        ? ` (with rounds: \`${settings.rounds.playbook}\`, at most ${settings.rounds.max}, no approval, in \`${settings.rounds.configDir}\`)`
        : '') +
      '; ' +
      `one call: \`${settings.oneCallModel}\`; single agent: \`${settings.singleAgent.agent}\` (\`${settings.singleAgent.model}\`); ` +
      `judge: \`${settings.judgeModel}\`${settings.temporal ? `; Temporal at ${settings.temporal}` : ''}.`,
    '',
    '## Averages per mode',
    '',
    table(
      [
        'Mode',
        'Answered',
        'Judged',
        ...criteriaHeads,
        'Mean',
        'Cited & retrieved',
        ...(rounds ? ['Rounds / question'] : []),
        'Tokens / question',
        ...(costs ? ['Cost / question'] : []),
        'Wall time / question',
      ],
      results.summary.map((s) => [
        MODE_LABELS[s.mode],
        `${s.answered}/${s.questions}`,
        `${s.judged}/${s.questions}`,
        ...CRITERIA.map((c) => fmtScore(s.scores[c])),
        `**${fmtScore(s.mean)}**`,
        s.cited ? `${fmtShare(s.citationValidity)} (${s.backed}/${s.cited})` : DASH,
        ...(rounds ? [s.avgRounds === null ? DASH : s.avgRounds.toFixed(1)] : []),
        fmtTokens(s.avgTokens),
        ...(costs ? [s.avgCostUsd === null ? 'unknown' : `$${s.avgCostUsd.toFixed(4)}`] : []),
        fmtDuration(s.avgWallMs),
      ]),
      [
        'l',
        'r',
        'r',
        ...CRITERIA.map(() => 'r' as const),
        'r',
        'r',
        ...(rounds ? ['r' as const] : []),
        'r',
        ...(costs ? ['r' as const] : []),
        'r',
      ],
    ),
    '',
    `Cited & retrieved: ${CITATION_VALIDITY_NOTE}`,
    ...(results.offline ? ['', `> ${OFFLINE_CITATIONS_NOTE}`] : []),
    ...(rounds
      ? [
          '',
          'Rounds: research rounds whose steps ran (the lead asked for more after reviewing the findings), per answered question; the plan itself is round 1 and not counted.',
        ]
      : []),
    '',
    'Scores are 1 to 5 (5 best), averaged over the judged answers. Tokens are what the API reported (input, output and prompt cache), averaged over every run of the mode, failed ones included; Baton counts every agent of the task. Costs are estimates from the prices in config/agents.yaml, shown only when every model used is priced. The judge is counted in none of them.',
    '',
    '## Mean score by question kind',
    '',
    table(
      ['Mode', ...QUESTION_KINDS],
      results.summary.map((s) => [MODE_LABELS[s.mode], ...QUESTION_KINDS.map((k) => fmtScore(s.byKind[k]))]),
      ['l', ...QUESTION_KINDS.map(() => 'r' as const)],
    ),
    '',
    '## Per question',
    '',
    table(
      [
        'Question',
        'Kind',
        'Mode',
        ...criteriaHeads,
        'Mean',
        'Cited & retrieved',
        ...(rounds ? ['Rounds'] : []),
        'Tokens',
        'Wall time',
      ],
      results.questions.flatMap((q) =>
        q.modes.map((m) => [
          `\`${q.id}\``,
          q.kind,
          m.ok ? MODE_LABELS[m.mode] : `${MODE_LABELS[m.mode]} (failed)`,
          ...CRITERIA.map((c) => fmtScore(m.judgement?.[c].score)),
          fmtScore(m.meanScore),
          fmtCitations(m.citations),
          ...(rounds ? [m.roundsUsed === undefined ? DASH : String(m.roundsUsed)] : []),
          fmtTokens(m.totalTokens),
          fmtDuration(m.wallMs),
        ]),
      ),
      [
        'l',
        'l',
        'l',
        ...CRITERIA.map(() => 'r' as const),
        'r',
        'r',
        ...(rounds ? ['r' as const] : []),
        'r',
        'r',
      ],
    ),
    '',
    '## Questions and verdicts',
    '',
  );
  for (const q of results.questions) {
    out.push(`- \`${q.id}\` (${q.kind}): ${cell(q.question)}`);
    for (const m of q.modes) {
      const note = !m.ok
        ? `failed: ${cell(clip(m.error ?? 'unknown error', 400))}`
        : m.judgement
          ? `${fmtScore(m.meanScore)}: ${cell(clip(m.judgement.verdict, 300))}`
          : `not judged: ${cell(clip(m.judge?.error ?? 'unknown error', 400))}`;
      out.push(`  - ${MODE_LABELS[m.mode]}: ${note}`);
    }
  }
  out.push(
    '',
    '## Rubric',
    '',
    ...CRITERIA.map(
      (c) => `- **${CRITERION_INFO[c].short}**: ${CRITERION_INFO[c].label}. ${CRITERION_INFO[c].asks}`,
    ),
    '',
    'Each answer is graded on its own by the judge model, which sees the question, the reference key points, the answer and its sources, and the tokens and time spent, but not which mode produced it. Full answers, justifications and usage are in `results.json`.',
  );
  if (results.offline) out.push('', `> **${OFFLINE_WARNING}**`);
  return `${out.join('\n')}\n`;
}
