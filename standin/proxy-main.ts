/**
 * `npm run fault-proxy`: runs the fault proxy (`proxy.ts`) on its own, to reproduce model-API
 * failures by hand against the stand-in, a gateway or the real API.
 *
 *   npm run fault-proxy -- --target http://127.0.0.1:8787 [--port 8788] [--rule RULE]...
 *
 * Rule syntax, `kind[:key=value]*`; rules apply in order, the first that matches a
 * `POST /v1/messages` and has uses left wins, anything else is forwarded untouched:
 *
 *   400..599          answer that HTTP error in the Anthropic shape   keys: retry-after=SECONDS, body=anthropic
 *   delay             forward after a pause                           keys: ms=N (required)
 *   hang              accept and never answer                         (the client's timeout must catch it)
 *   drop-mid-stream   forward, then cut the connection                keys: after-bytes=N (default: after
 *                                                                           the first event)
 *   truncate-json     forward, then cut a JSON body in half, or corrupt a stream's first tool input
 *   refusal           answer 200 with a refusal: stop_reason "refusal", no answer
 *
 *   Any kind also takes count=N (default 1; count=inf for every request) and tool=NAME (only requests
 *   that must call that tool, e.g. submit_findings).
 *
 * Examples:
 *   --rule 429:retry-after=2:count=3      three rate limits, each asking for a 2 s wait
 *   --rule hang:tool=submit_findings      the first findings call never answers
 *   --rule drop-mid-stream:count=inf      every stream breaks after its first event
 *
 * Exit codes: 0 after SIGINT/SIGTERM, 1 when the proxy cannot start (e.g. port in use), 2 on a bad
 * command line.
 */
import {
  FaultRuleError,
  formatRule,
  parseRule,
  startFaultProxy,
  type FaultProxy,
  type FaultRule,
} from './proxy';

const USAGE = `usage: npm run fault-proxy -- --target URL [--port N] [--rule RULE]...

  --target URL   base URL of the Messages API to sit in front of, e.g. http://127.0.0.1:8787
                 (npm run stand-in), a gateway, or https://api.anthropic.com
  --port N       port to listen on, on 127.0.0.1 (default 8788; 0 picks a free one)
  --rule RULE    a fault, kind[:key=value]*; repeat for more, applied in order

Rule kinds (first matching rule with uses left wins; other requests are forwarded untouched):
  400..599         HTTP error in the Anthropic shape   retry-after=SECONDS, body=anthropic
  delay            forward after a pause               ms=N (required)
  hang             accept and never answer
  drop-mid-stream  cut the connection mid-reply        after-bytes=N (default: after the first event)
  truncate-json    cut a JSON reply in half; in a stream, corrupt the first tool input
  refusal          200 with stop_reason "refusal" and no answer
  Every kind:      count=N or count=inf (default 1), tool=NAME (only calls that must use that tool)

Examples:
  --rule 429:retry-after=2:count=3   --rule hang:tool=submit_findings   --rule delay:ms=1500`;

interface CliOptions {
  target: string;
  port: number;
  rules: FaultRule[];
}

/** Thrown for a bad command line; the message names the flag and the value. */
class UsageError extends Error {}

/** Parses `--flag value` and `--flag=value`. */
function parseArgs(argv: readonly string[]): CliOptions {
  let target: string | undefined;
  let port = 8788;
  const rules: FaultRule[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === undefined) continue;
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq >= 0 ? arg.slice(0, eq) : arg;
    // With `--flag=value` the value is inline; otherwise it is the next argument, consumed here.
    const value = (): string => {
      const v = flag !== arg ? arg.slice(eq + 1) : argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--target': {
        const v = value();
        let url: URL | undefined;
        try {
          url = new URL(v);
        } catch {
          url = undefined;
        }
        if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
          throw new UsageError(`--target must be an http:// or https:// URL, got "${v}"`);
        }
        target = v;
        break;
      }
      case '--port': {
        const v = value();
        // Number('') is 0 and Number('1e3') is 1000: plain digits only, so typos are not accepted.
        const n = /^\d+$/.test(v) ? Number(v) : NaN;
        if (!Number.isSafeInteger(n) || n > 65535) {
          throw new UsageError(`--port must be a whole number from 0 to 65535, got "${v}"`);
        }
        port = n;
        break;
      }
      case '--rule': {
        const v = value();
        try {
          rules.push(parseRule(v));
        } catch (err) {
          // parseRule says `rule "<text>": why`; name the flag instead.
          if (err instanceof FaultRuleError) throw new UsageError(err.message.replace(/^rule /, '--rule '));
          throw err;
        }
        break;
      }
      default:
        throw new UsageError(`unknown flag "${arg}"`);
    }
  }
  if (target === undefined) throw new UsageError('--target is required');
  return { target, port, rules };
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
    console.error(`fault-proxy: ${err.message}\n\n${USAGE}`);
    process.exitCode = 2;
    return;
  }

  let proxy: FaultProxy;
  try {
    proxy = await startFaultProxy({
      target: options.target,
      port: options.port,
      rules: options.rules,
      // One line per request, so what the proxy did can be matched with what the worker saw.
      log: (line) => console.log(`${new Date().toISOString()} ${line}`),
    });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    console.error(`fault-proxy: cannot listen on 127.0.0.1:${options.port}: ${detail}`);
    process.exitCode = 1;
    return;
  }

  console.log(`Baton fault proxy listening on ${proxy.url}, forwarding to ${options.target}`);
  if (options.rules.length === 0) {
    console.log('No rules: every request is forwarded untouched.');
  } else {
    console.log('Rules, in order (the first that matches and has uses left wins):');
    for (const [i, rule] of options.rules.entries()) console.log(`  ${i + 1}. ${formatRule(rule)}`);
  }
  // The proxy passes the key through: a stand-in takes any key, anything else needs the real one.
  const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(options.target).hostname);
  console.log('Point a worker at it with:');
  console.log(
    loopback
      ? `  ANTHROPIC_BASE_URL=${proxy.url} ANTHROPIC_API_KEY=offline-stand-in npm run worker`
      : `  ANTHROPIC_BASE_URL=${proxy.url} npm run worker   (with the API key ${options.target} expects)`,
  );
  console.log('Press Ctrl+C to stop.');

  const running = proxy;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const { requests, forwarded, injected } = running.stats();
    console.log(
      `\nfault-proxy: ${signal} received, shutting down (${requests} requests, ${forwarded} forwarded, injected ${JSON.stringify(injected)})`,
    );
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(
          `fault-proxy: error while closing: ${err instanceof Error ? err.message : String(err)}`,
        );
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(`fault-proxy: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
