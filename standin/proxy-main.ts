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
import { command, intOption, runMain, UsageError } from '../lib/cli';
import { closeOnSignal } from '../lib/signals';
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

/** The `--target` URL, checked. @throws UsageError */
function targetUrl(value: string | undefined): string {
  if (value === undefined) throw new UsageError('--target is required');
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new UsageError(`--target must be an http:// or https:// URL, got "${value}"`);
  }
  return value;
}

/** The `--rule`s, in order. @throws UsageError */
function faultRules(values: readonly string[]): FaultRule[] {
  return values.map((value) => {
    try {
      return parseRule(value);
    } catch (err) {
      // parseRule says `rule "<text>": why`; name the flag instead.
      if (err instanceof FaultRuleError) throw new UsageError(err.message.replace(/^rule /, '--rule '));
      throw err;
    }
  });
}

export const main = command(
  {
    name: 'fault-proxy',
    usage: USAGE,
    options: {
      target: { type: 'string' },
      port: { type: 'string' },
      rule: { type: 'string', multiple: true },
    },
    unknownOption: (option) => `unknown flag "${option}"`,
  },
  async ({ values }) => {
    const rules = faultRules(values.rule ?? []);
    const target = targetUrl(values.target);
    const port = intOption('port', values.port, 0, 65535) ?? 8788;
    let proxy: FaultProxy;
    try {
      proxy = await startFaultProxy({
        target,
        port,
        rules,
        // One line per request, so what the proxy did can be matched with what the worker saw.
        log: (line) => console.log(`${new Date().toISOString()} ${line}`),
      });
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      console.error(`fault-proxy: cannot listen on 127.0.0.1:${port}: ${detail}`);
      return 1;
    }

    console.log(`Baton fault proxy listening on ${proxy.url}, forwarding to ${target}`);
    if (rules.length === 0) {
      console.log('No rules: every request is forwarded untouched.');
    } else {
      console.log('Rules, in order (the first that matches and has uses left wins):');
      for (const [i, rule] of rules.entries()) console.log(`  ${i + 1}. ${formatRule(rule)}`);
    }
    // The proxy passes the key through: a stand-in takes any key, anything else needs the real one.
    const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(new URL(target).hostname);
    console.log('Point a worker at it with:');
    console.log(
      loopback
        ? `  ANTHROPIC_BASE_URL=${proxy.url} ANTHROPIC_API_KEY=offline-stand-in npm run worker`
        : `  ANTHROPIC_BASE_URL=${proxy.url} npm run worker   (with the API key ${target} expects)`,
    );
    console.log('Press Ctrl+C to stop.');
    return closeOnSignal(
      'fault-proxy',
      () => proxy.close(),
      () => {
        const { requests, forwarded, injected } = proxy.stats();
        return `${requests} requests, ${forwarded} forwarded, injected ${JSON.stringify(injected)}`;
      },
    );
  },
);

if (require.main === module) runMain(main);
