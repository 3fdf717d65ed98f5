/**
 * The one way Baton's entry points read their command line: `node:util` `parseArgs`, a usage text,
 * `--help` answered with exit 0, and any bad argument refused with the usage and exit 2.
 *
 *   export const main = command({ name: 'stand-in', usage: USAGE, options: { port: { type: 'string' } } },
 *     async ({ values }) => { ...; return 0; });
 *   if (require.main === module) runMain(main);
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** A bad command line. The message names the argument and what is wrong with it. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface CommandSpec<O extends ParseArgsOptionsConfig> {
  /** What the user types, e.g. `npm run stand-in --`; prefixes error messages. */
  name: string;
  /** The help text: the usage line(s) first, then the options. Printed by --help, and after errors. */
  usage: string;
  options: O;
  /** Whether positional arguments are accepted (default: no). */
  allowPositionals?: boolean;
  /** How this command words an unknown option, e.g. `--x`, if not `unknown option --x`. */
  unknownOption?: (option: string) => string;
}

const HELP = { help: { type: 'boolean', short: 'h' } } as const;

/** Parses argv against a spec. `help` is true when -h/--help was given. @throws UsageError */
export function parseCommandLine<O extends ParseArgsOptionsConfig>(
  spec: CommandSpec<O>,
  argv: readonly string[],
) {
  try {
    const parsed = parseArgs({
      args: [...argv],
      options: { ...spec.options, ...HELP },
      allowPositionals: spec.allowPositionals ?? false,
      strict: true,
    });
    const { help, ...values } = parsed.values as typeof parsed.values & { help?: boolean };
    return { help: help === true, values, positionals: parsed.positionals };
  } catch (err) {
    // parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown or malformed options. Not
    // `instanceof TypeError`: under jest, Node's own errors come from another realm.
    const { code, message } =
      typeof err === 'object' && err !== null ? (err as { code?: unknown; message?: unknown }) : {};
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) {
      throw new UsageError(shortParseError(code, String(message), spec.unknownOption));
    }
    throw err;
  }
}

/**
 * parseArgs's messages, said the short way every Baton command says them: `unknown option --x`,
 * `--x needs a value`, `unexpected argument "b"`. Anything else keeps parseArgs's own words.
 */
function shortParseError(
  code: string,
  message: string,
  unknownOption = (option: string): string => `unknown option ${option}`,
): string {
  // The first quoted word of the message, e.g. '--out' in "Option '-o, --out <value>' argument missing".
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  const flag = quoted.split(/[\s,]+/).find((word) => word.startsWith('--')) ?? quoted.split(/[\s,]+/)[0];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return unknownOption(quoted);
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument "${quoted}"`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(message)) return `${flag} does not take a value`;
    if (/argument missing|argument is ambiguous/.test(message)) return `${flag} needs a value`;
  }
  return message;
}

/** Reads a whole number option in [min, max]; undefined stays undefined. @throws UsageError */
export function intOption(
  flag: string,
  value: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  // Number('') is 0 and Number('1e3') is 1000: plain digits only, so typos are not silently accepted.
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a whole number from ${min} to ${max}, got "${value}"`);
  }
  return n;
}

/** Where a command prints, one line at a time. */
export interface CommandOutput {
  out: (line: string) => void;
  err: (line: string) => void;
}

const CONSOLE: CommandOutput = { out: (line) => console.log(line), err: (line) => console.error(line) };

/**
 * Wraps an entry point's main: --help prints the usage and answers 0; a UsageError prints the message
 * and the usage on stderr and answers 2; otherwise main's exit code. Tests call the result in-process,
 * and may pass `io` to collect what it prints (default: the console).
 */
export function command<O extends ParseArgsOptionsConfig>(
  spec: CommandSpec<O>,
  main: (args: ReturnType<typeof parseCommandLine<O>>) => Promise<number>,
  io: CommandOutput = CONSOLE,
): (argv: string[]) => Promise<number> {
  const print = (write: (line: string) => void, text: string): void => text.split('\n').forEach(write);
  return async (argv) => {
    try {
      const args = parseCommandLine(spec, argv);
      if (args.help) {
        print(io.out, spec.usage);
        return 0;
      }
      return await main(args);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      print(io.err, `${spec.name}: ${err.message}\n\n${spec.usage}`);
      return 2;
    }
  };
}

/** Runs a main with this process's arguments and exits with its code; an unexpected error exits 1. */
export function runMain(main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
