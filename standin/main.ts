/**
 * `npm run stand-in`: runs the stand-in model on its own, for the offline demo.
 *
 *   npm run stand-in -- [--port 8787] [--latency-ms 0]
 *
 * Exit codes: 0 after SIGINT/SIGTERM, 1 when the server cannot start (e.g. port in use),
 * 2 on a bad command line.
 */
import { startStandIn, type StandIn } from './server';

const USAGE = 'usage: npm run stand-in -- [--port N] [--latency-ms N]';

interface CliOptions {
  port: number;
  latencyMs: number;
}

/** Thrown for a bad command line; the message names the flag and the value. */
class UsageError extends Error {}

/** Reads a whole non-negative number, or explains which flag got what. */
function parseCount(flag: string, value: string | undefined, max: number): number {
  if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value`);
  // Number('') is 0 and Number('1e3') is 1000: require plain digits so typos are not silently accepted.
  const n = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > max) {
    throw new UsageError(`${flag} must be a whole number from 0 to ${max}, got "${value}"`);
  }
  return n;
}

/** Parses `--flag value` and `--flag=value`. */
function parseArgs(argv: readonly string[]): CliOptions {
  const options: CliOptions = { port: 8787, latencyMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === undefined) continue;
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    // With `--flag=value` the value is inline; otherwise it is the next argument, consumed here.
    const value = (): string | undefined => (eq >= 0 ? arg.slice(eq + 1) : argv[++i]);
    switch (flag) {
      case '--port':
        options.port = parseCount(flag, value(), 65535);
        break;
      case '--latency-ms':
        options.latencyMs = parseCount(flag, value(), 600_000);
        break;
      default:
        throw new UsageError(`unknown flag "${arg}"`);
    }
  }
  return options;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  let options: CliOptions;
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`stand-in: ${err.message}\n${USAGE}`);
    process.exitCode = 2;
    return;
  }

  let standIn: StandIn;
  try {
    standIn = await startStandIn({ port: options.port, latencyMs: options.latencyMs });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    console.error(`stand-in: cannot listen on 127.0.0.1:${options.port}: ${detail}`);
    process.exitCode = 1;
    return;
  }

  console.log(`Baton stand-in model (offline, not a real model) listening on ${standIn.url}`);
  if (options.latencyMs > 0) console.log(`Simulated latency: ${options.latencyMs} ms per reply`);
  console.log('Point a worker at it with:');
  console.log(`  ANTHROPIC_BASE_URL=${standIn.url} ANTHROPIC_API_KEY=offline-stand-in npm run worker`);
  console.log('Press Ctrl+C to stop.');

  const running = standIn;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    console.log(`\nstand-in: ${signal} received, shutting down`);
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`stand-in: error while closing: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`stand-in: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
