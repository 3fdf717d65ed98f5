/** The command line of `npm run eval`: parsed into one typed object, every bad argument named. */
import path from 'node:path';
import { PROJECT_ROOT } from '../activities/options';
import { parseCommandLine, UsageError } from '../lib/cli';
import { MODES, type Mode } from './modes';

export const USAGE = `usage: npm run eval -- [options]

Runs each research question four ways (one model call, a single agent with tools, Baton's
multi-agent playbook, and the same playbook with research rounds), has a judge model grade every
answer against a rubric, counts the share of each answer's citations that a tool really returned,
and writes results.json, results.md and chart.svg.

  --questions <file>      question file (default: eval/questions.yaml)
  --limit <n>             only the first n questions
  --modes <list>          comma-separated, from ${MODES.join(', ')} (default: all four)
  --playbook <id>         Baton playbook for the baton modes (default: research-brief)
  --rounds <n>            research rounds the baton-rounds mode allows, 1 to 5 (default: 2)
  --judge-model <model>   model of the judge (default: the lead agent's model)
  --concurrency <n>       questions run at once, 1 to 8 (default: 1, which keeps wall times comparable)
  --task-timeout <min>    give up on one Baton task after this many minutes (default: 30)
  --out <dir>             where to write the results (default: eval/results/<date>)
  -h, --help              show this help

With ANTHROPIC_API_KEY set it measures real models. Without it, everything runs against Baton's
offline stand-in model, and the results say that the scores are meaningless. Baton's tasks run on
the Temporal server at TEMPORAL_ADDRESS if set, otherwise on a dev server the harness starts.`;

export interface EvalArgs {
  questionsFile: string;
  limit?: number;
  modes: Mode[];
  playbook: string;
  /** `rounds.max` of the baton-rounds mode's playbook (its approval: none). */
  rounds: number;
  judgeModel?: string;
  concurrency: number;
  taskTimeoutMs: number;
  /** Undefined: `eval/results/<date>` (with a suffix when that folder already holds results). */
  outDir?: string;
}

/** Research rounds the baton-rounds mode allows by default, and at most (a playbook's own bound). */
export const DEFAULT_ROUNDS = 2;
const MAX_ROUNDS = 5;

export const DEFAULT_QUESTIONS = path.join(PROJECT_ROOT, 'eval', 'questions.yaml');

/** `npm run eval`'s command line for lib/cli; every option is `multiple` so a repeat can be refused. */
export const EVAL_COMMAND = {
  name: 'eval',
  usage: USAGE,
  options: {
    questions: { type: 'string', multiple: true },
    limit: { type: 'string', multiple: true },
    modes: { type: 'string', multiple: true },
    playbook: { type: 'string', multiple: true },
    rounds: { type: 'string', multiple: true },
    'judge-model': { type: 'string', multiple: true },
    concurrency: { type: 'string', multiple: true },
    'task-timeout': { type: 'string', multiple: true },
    out: { type: 'string', multiple: true },
  },
} as const;

type EvalValues = ReturnType<typeof parseCommandLine<(typeof EVAL_COMMAND)['options']>>['values'];

function positiveInt(name: string, value: string, max?: number): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new UsageError(`${name} must be a whole number of at least 1 (got "${value}")`);
  }
  const n = Number(value);
  if (max !== undefined && n > max) throw new UsageError(`${name} must be at most ${max} (got ${n})`);
  return n;
}

/** The modes of `--modes a,b`, checked, in the canonical order. */
function modesOf(value: string): Mode[] {
  const modes = value
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  const unknown = modes.filter((m) => !(MODES as readonly string[]).includes(m));
  if (unknown.length) {
    throw new UsageError(
      `--modes: unknown mode ${unknown.map((m) => `"${m}"`).join(', ')} (choose from ${MODES.join(', ')})`,
    );
  }
  if (modes.length === 0) throw new UsageError(`--modes needs at least one of ${MODES.join(', ')}`);
  // Kept in the canonical order, once each: the table and chart read the same way every run.
  return MODES.filter((m) => modes.includes(m));
}

/** The options as {@link EvalArgs}, every value checked. @throws UsageError */
export function evalArgs(values: EvalValues, cwd = process.cwd()): EvalArgs {
  const one = (name: keyof EvalValues): string | undefined => {
    const given = values[name];
    if (given === undefined) return undefined;
    if (given.length > 1) throw new UsageError(`--${name} is given more than once`);
    if (!given[0]) throw new UsageError(`--${name} needs a value`);
    return given[0];
  };
  const questions = one('questions');
  const limit = one('limit');
  const modes = one('modes');
  const playbook = one('playbook') ?? 'research-brief';
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(playbook)) {
    throw new UsageError(`--playbook must be a playbook id such as "research-brief" (got "${playbook}")`);
  }
  const rounds = one('rounds');
  const judgeModel = one('judge-model');
  const concurrency = one('concurrency');
  const taskTimeout = one('task-timeout');
  const out = one('out');
  return {
    questionsFile: questions === undefined ? DEFAULT_QUESTIONS : path.resolve(cwd, questions),
    ...(limit === undefined ? {} : { limit: positiveInt('--limit', limit) }),
    modes: modes === undefined ? [...MODES] : modesOf(modes),
    playbook,
    rounds: rounds === undefined ? DEFAULT_ROUNDS : positiveInt('--rounds', rounds, MAX_ROUNDS),
    ...(judgeModel === undefined ? {} : { judgeModel }),
    concurrency: concurrency === undefined ? 1 : positiveInt('--concurrency', concurrency, 8),
    taskTimeoutMs:
      (taskTimeout === undefined ? 30 : positiveInt('--task-timeout', taskTimeout, 24 * 60)) * 60_000,
    ...(out === undefined ? {} : { outDir: path.resolve(cwd, out) }),
  };
}

/** Parses the arguments after `npm run eval --`. Returns `'help'` for --help. @throws UsageError */
export function parseEvalArgs(argv: readonly string[], cwd = process.cwd()): EvalArgs | 'help' {
  const { help, values } = parseCommandLine(EVAL_COMMAND, argv);
  return help ? 'help' : evalArgs(values, cwd);
}
