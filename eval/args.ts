/** The command line of `npm run eval`: parsed into one typed object, every bad argument named. */
import path from 'node:path';
import { PROJECT_ROOT } from '../activities/options';
import { MODES, type Mode } from './modes';

export const USAGE = `usage: npm run eval -- [options]

Runs each research question three ways (one model call, a single agent with tools, Baton's
multi-agent playbook), has a judge model grade every answer against a rubric, and writes
results.json, results.md and chart.svg.

  --questions <file>      question file (default: eval/questions.yaml)
  --limit <n>             only the first n questions
  --modes <list>          comma-separated, from ${MODES.join(', ')} (default: all three)
  --playbook <id>         Baton playbook for the baton mode (default: research-brief)
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
  judgeModel?: string;
  concurrency: number;
  taskTimeoutMs: number;
  /** Undefined: `eval/results/<date>` (with a suffix when that folder already holds results). */
  outDir?: string;
}

export const DEFAULT_QUESTIONS = path.join(PROJECT_ROOT, 'eval', 'questions.yaml');

/** Thrown for a bad command line; the message names the argument. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function positiveInt(name: string, value: string, max?: number): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new UsageError(`${name} must be a whole number of at least 1 (got "${value}")`);
  }
  const n = Number(value);
  if (max !== undefined && n > max) throw new UsageError(`${name} must be at most ${max} (got ${n})`);
  return n;
}

/** Parses the arguments after `npm run eval --`. Returns `'help'` for --help. @throws UsageError */
export function parseEvalArgs(argv: readonly string[], cwd = process.cwd()): EvalArgs | 'help' {
  const args: EvalArgs = {
    questionsFile: DEFAULT_QUESTIONS,
    modes: [...MODES],
    playbook: 'research-brief',
    concurrency: 1,
    taskTimeoutMs: 30 * 60_000,
  };
  const seen = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (raw === '-h' || raw === '--help') return 'help';
    if (!raw.startsWith('--')) throw new UsageError(`unexpected argument "${raw}" (options start with --)`);
    const eq = raw.indexOf('=');
    const name = eq === -1 ? raw : raw.slice(0, eq);
    const value = (): string => {
      const v = eq === -1 ? argv[++i] : raw.slice(eq + 1);
      if (v === undefined || v === '' || (eq === -1 && v.startsWith('--')))
        throw new UsageError(`${name} needs a value`);
      return v;
    };
    if (seen.has(name)) throw new UsageError(`${name} is given more than once`);
    seen.add(name);
    switch (name) {
      case '--questions':
        args.questionsFile = path.resolve(cwd, value());
        break;
      case '--limit':
        args.limit = positiveInt(name, value());
        break;
      case '--modes': {
        const modes = value()
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
        args.modes = MODES.filter((m) => modes.includes(m));
        break;
      }
      case '--playbook': {
        const id = value();
        if (!/^[a-z][a-z0-9-]{0,39}$/.test(id)) {
          throw new UsageError(`--playbook must be a playbook id such as "research-brief" (got "${id}")`);
        }
        args.playbook = id;
        break;
      }
      case '--judge-model':
        args.judgeModel = value();
        break;
      case '--concurrency':
        args.concurrency = positiveInt(name, value(), 8);
        break;
      case '--task-timeout':
        args.taskTimeoutMs = positiveInt(name, value(), 24 * 60) * 60_000;
        break;
      case '--out':
        args.outDir = path.resolve(cwd, value());
        break;
      default:
        throw new UsageError(`unknown option ${name}`);
    }
  }
  return args;
}
