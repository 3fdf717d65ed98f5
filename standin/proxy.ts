/**
 * The fault proxy: a loopback HTTP proxy in front of any Anthropic Messages API base URL (the
 * stand-in model, a gateway, the real API) that makes chosen requests fail on purpose.
 *
 * The stand-in can inject faults too, but only for itself. The proxy reproduces the same failure
 * modes, and a few more that only a man in the middle can produce (a stream cut after N bytes, a
 * corrupted body, a refusal), against whatever is behind it, so a failure seen against a real
 * gateway can be replayed by hand with `npm run fault-proxy` and pinned down in a test.
 *
 * Rules are checked in order for every `POST /v1/messages`; the first one that matches and has uses
 * left is applied, and anything else (other paths included) is forwarded untouched: the request body
 * byte for byte, the response's status, headers (minus hop-by-hop ones) and body as they arrive, so
 * streamed events are not held back. Only Node's `http`, `https` and `zlib` modules are used.
 */
import http from 'node:http';
import https from 'node:https';
import { pipeline, Transform, type TransformCallback } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import zlib from 'node:zlib';
import { errorTypeFor, listenOnLoopback } from './wire';

// ---------------------------------------------------------------------------------------------------------
// Public types

/** Which requests a rule applies to. */
export interface FaultMatch {
  /**
   * Only requests for this answer, as the stand-in names it: the `title` of the structured-output
   * schema (`output_config.format`; Baton's `submit_plan`, `submit_findings`, `submit_report`); or,
   * for a forced tool, `tool_choice.name` for `{type: "tool"}` and for `{type: "any"}` the first
   * offered `submit_*` tool, else the last tool. Requests that ask for neither never match.
   */
  tool?: string;
}

/** What every rule has besides its kind. */
export interface FaultRuleBase {
  /** How many matching requests the rule applies to before it is used up; default 1, `Infinity` allowed. */
  count?: number;
  /** Default: any `POST /v1/messages`. */
  match?: FaultMatch;
}

/** Answer with an HTTP error in the real Anthropic shape; the target never sees the request. */
export interface StatusRule extends FaultRuleBase {
  kind: 'status';
  /** 400 to 599. */
  status: number;
  /** Sent as the `retry-after` header (seconds), as the API does on 429 and 529. */
  retryAfterSeconds?: number;
  /** The error body's shape; `anthropic` (`{type: "error", error: {type, message}}`) is the only one. */
  body?: 'anthropic';
}

/** Forward the request after a pause (a slow network or gateway). */
export interface DelayRule extends FaultRuleBase {
  kind: 'delay';
  ms: number;
}

/** Accept the request and never answer: only a client timeout, an abort or closing the proxy ends it. */
export interface HangRule extends FaultRuleBase {
  kind: 'hang';
}

/**
 * Forward the request, then cut the connection after `afterBytes` bytes of the response body.
 * Default: right after the first server-sent event; for a response that is not an event stream,
 * after half its body. The response is sent chunked whatever the target sent, so the client cannot
 * mistake a cut body for a complete one, even when the target's response was shorter than the cut.
 */
export interface DropMidStreamRule extends FaultRuleBase {
  kind: 'drop-mid-stream';
  afterBytes?: number;
}

/**
 * Forward the request and corrupt the reply. A JSON body is cut in half and sent with a matching
 * `content-length`, so the client reads a complete but malformed body. In an event stream, the
 * first `input_json_delta` or `text_delta` (a structured answer is JSON text) is cut in half and
 * ends in a NUL character, so the answer can never be valid JSON; a stream with neither passes
 * unchanged.
 */
export interface TruncateJsonRule extends FaultRuleBase {
  kind: 'truncate-json';
}

/**
 * Answer 200 with a well-formed message that refuses: one text block, no `tool_use`, stop reason
 * `refusal` (streamed as events when the request asked for a stream). The target never sees it.
 */
export interface RefusalRule extends FaultRuleBase {
  kind: 'refusal';
}

/** One misbehaviour of the proxy. */
export type FaultRule =
  StatusRule | DelayRule | HangRule | DropMidStreamRule | TruncateJsonRule | RefusalRule;

/** Options for {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** Base URL of the Messages API to forward to, e.g. `http://127.0.0.1:8787`; `http:` or `https:`. */
  target: string;
  /** TCP port to listen on; 0 (the default) picks a free one. The proxy binds 127.0.0.1 only. */
  port?: number;
  /** Initial rules, in order; more can be added with {@link FaultProxy.add}. */
  rules?: FaultRule[];
  /** Called with one line per request saying what the proxy did with it (the CLI prints these). */
  log?: (line: string) => void;
}

/** Counters since the proxy started. */
export interface FaultProxyStats {
  /** HTTP requests received, on any path. */
  requests: number;
  /** Requests sent on to the target (untouched, delayed, or with a fault applied to the reply). */
  forwarded: number;
  /** Faults applied, keyed by {@link ruleKindLabel}: `429`, `delay`, `hang`, `drop-mid-stream`… */
  injected: Record<string, number>;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** Base URL for the SDK's `baseURL` (or `ANTHROPIC_BASE_URL`), e.g. `http://127.0.0.1:8788`. */
  url: string;
  port: number;
  /** Appends a rule after the existing ones. Throws {@link FaultRuleError} for an invalid rule. */
  add(rule: FaultRule): void;
  /** Removes every rule, used up or not: from now on everything is forwarded untouched. */
  clear(): void;
  stats(): FaultProxyStats;
  /** Stops listening, cuts every open connection (hanging ones included) and aborts calls to the target. */
  close(): Promise<void>;
}

/** An invalid rule, from {@link parseRule} or {@link FaultProxy.add}; the message says what is wrong. */
export class FaultRuleError extends Error {
  override name = 'FaultRuleError';
}

// ---------------------------------------------------------------------------------------------------------
// Rules: checking, parsing and printing

/** The kinds a rule can have, as the command line spells them (a status is written as its number). */
const KINDS = ['delay', 'hang', 'drop-mid-stream', 'truncate-json', 'refusal'] as const;

/** setTimeout turns anything longer into 1 ms. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** Tool names as the Messages API allows them; anything else in `tool=` is a typo. */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;

/** The rule's kind as the command line writes it, and as {@link FaultProxyStats.injected} keys it. */
export function ruleKindLabel(rule: FaultRule): string {
  return rule.kind === 'status' ? String(rule.status) : rule.kind;
}

function isWhole(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** What is wrong with a rule, or undefined when it can be applied as written. */
function ruleProblem(rule: FaultRule): string | undefined {
  if (rule.count !== undefined && rule.count !== Infinity && !(isWhole(rule.count) && rule.count >= 1)) {
    return `count must be a whole number of at least 1, or Infinity; got ${rule.count}`;
  }
  if (rule.match?.tool !== undefined && !TOOL_NAME.test(rule.match.tool)) {
    return `"${rule.match.tool}" is not a valid tool name`;
  }
  switch (rule.kind) {
    case 'status':
      if (!Number.isInteger(rule.status) || rule.status < 400 || rule.status > 599) {
        return `status must be an HTTP error from 400 to 599, got ${rule.status}`;
      }
      if (
        rule.retryAfterSeconds !== undefined &&
        !(Number.isFinite(rule.retryAfterSeconds) && rule.retryAfterSeconds >= 0)
      ) {
        return `retry-after must be a number of seconds >= 0, got ${rule.retryAfterSeconds}`;
      }
      if (rule.body !== undefined && rule.body !== 'anthropic') return `body must be "anthropic"`;
      return undefined;
    case 'delay':
      // setTimeout silently turns anything above 2^31-1 ms into 1 ms.
      if (!isWhole(rule.ms) || rule.ms > MAX_DELAY_MS) {
        return `ms must be a whole number of milliseconds up to ${MAX_DELAY_MS}, got ${rule.ms}`;
      }
      return undefined;
    case 'drop-mid-stream':
      if (rule.afterBytes !== undefined && !isWhole(rule.afterBytes)) {
        return `after-bytes must be a whole number >= 0, got ${rule.afterBytes}`;
      }
      return undefined;
    case 'hang':
    case 'truncate-json':
    case 'refusal':
      return undefined;
    default:
      // A plain-JS caller (or a typo in a cast) can pass a kind the type does not know.
      return `unknown kind "${String((rule as { kind: unknown }).kind)}"`;
  }
}

/** Throws {@link FaultRuleError} unless the rule can be applied as written. */
export function validateRule(rule: FaultRule): void {
  const problem = ruleProblem(rule);
  if (problem !== undefined) throw new FaultRuleError(`rule ${formatRule(rule)}: ${problem}`);
}

/** Parses a whole number (plain digits: `1e3` or `0x10` are typos here, not numbers). */
function parseWhole(text: string, key: string, rule: string): number {
  const n = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) {
    throw new FaultRuleError(`rule "${rule}": ${key} must be a whole number, got "${text}"`);
  }
  return n;
}

/**
 * Parses the command line's rule syntax, `kind[:key=value]*`:
 *
 * - kinds: an HTTP status from 400 to 599 (`429`), `delay`, `hang`, `drop-mid-stream`,
 *   `truncate-json`, `refusal`;
 * - any kind: `count=N` (or `count=inf`), `tool=NAME` (see {@link FaultMatch.tool});
 * - a status: `retry-after=SECONDS`, `body=anthropic`; `delay`: `ms=N` (required);
 *   `drop-mid-stream`: `after-bytes=N`.
 *
 * E.g. `429:retry-after=2:count=3`, `delay:ms=1500`, `hang:tool=submit_findings`, `drop-mid-stream`.
 * Throws {@link FaultRuleError} naming the offending part.
 */
export function parseRule(text: string): FaultRule {
  const [kindText = '', ...pairs] = text.trim().split(':');
  const fail = (why: string): never => {
    throw new FaultRuleError(`rule "${text}": ${why}`);
  };
  if (kindText === '') fail('missing kind');

  let rule: FaultRule;
  switch (kindText) {
    case 'delay':
      // `ms` is required; -1 marks it as not given yet.
      rule = { kind: 'delay', ms: -1 };
      break;
    case 'hang':
    case 'drop-mid-stream':
    case 'truncate-json':
    case 'refusal':
      rule = { kind: kindText };
      break;
    default:
      if (!/^\d{3}$/.test(kindText)) {
        return fail(`unknown kind "${kindText}"; expected an HTTP status (400-599), ${KINDS.join(', ')}`);
      }
      rule = { kind: 'status', status: Number(kindText) };
  }

  const seen = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) fail(`"${pair}" is not key=value`);
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (seen.has(key)) fail(`${key} given twice`);
    seen.add(key);
    if (value === '') fail(`${key} needs a value`);

    if (key === 'count') {
      rule.count = /^(inf|infinity)$/i.test(value) ? Infinity : parseWhole(value, key, text);
    } else if (key === 'tool') {
      rule.match = { tool: value };
    } else if (rule.kind === 'status' && key === 'retry-after') {
      // Seconds, possibly fractional, as the header allows; no exponents or signs.
      if (!/^\d+(\.\d+)?$/.test(value)) fail(`retry-after must be a number of seconds, got "${value}"`);
      rule.retryAfterSeconds = Number(value);
    } else if (rule.kind === 'status' && key === 'body') {
      if (value !== 'anthropic') fail(`body must be "anthropic", got "${value}"`);
      rule.body = 'anthropic';
    } else if (rule.kind === 'delay' && key === 'ms') {
      rule.ms = parseWhole(value, key, text);
    } else if (rule.kind === 'drop-mid-stream' && key === 'after-bytes') {
      rule.afterBytes = parseWhole(value, key, text);
    } else {
      fail(`unknown key "${key}" for ${ruleKindLabel(rule)}`);
    }
  }
  if (rule.kind === 'delay' && rule.ms < 0) fail('delay needs ms=N');
  const problem = ruleProblem(rule);
  if (problem !== undefined) fail(problem);
  return rule;
}

/** Writes a rule in the command line's syntax; `parseRule(formatRule(r))` gives `r` back. */
export function formatRule(rule: FaultRule): string {
  const parts = [ruleKindLabel(rule)];
  if (rule.kind === 'status' && rule.retryAfterSeconds !== undefined) {
    parts.push(`retry-after=${rule.retryAfterSeconds}`);
  }
  if (rule.kind === 'status' && rule.body !== undefined) parts.push(`body=${rule.body}`);
  if (rule.kind === 'delay') parts.push(`ms=${rule.ms}`);
  if (rule.kind === 'drop-mid-stream' && rule.afterBytes !== undefined) {
    parts.push(`after-bytes=${rule.afterBytes}`);
  }
  if (rule.count !== undefined) parts.push(`count=${rule.count === Infinity ? 'inf' : rule.count}`);
  if (rule.match?.tool !== undefined) parts.push(`tool=${rule.match.tool}`);
  return parts.join(':');
}

// ---------------------------------------------------------------------------------------------------------
// Wire constants

/** Headers that describe one connection, not the message (RFC 9110 §7.6.1): never forwarded. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Request bodies above this are refused with 413 rather than buffered (the real API's limit is 32 MB). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** What the refusal rule's message says; labelled so nobody mistakes it for a model's words. */
const REFUSAL_TEXT =
  "[fault proxy] I can't help with that request. (Refusal injected by Baton's fault proxy.)";

// ---------------------------------------------------------------------------------------------------------
// Proxy

/** A rule with its uses left. */
interface ActiveRule {
  rule: FaultRule;
  left: number;
}

/** What the proxy read from a request to pick a rule. */
interface RequestInfo {
  /** `POST /v1/messages`: the only requests rules apply to. */
  isMessages: boolean;
  tool?: string;
  stream: boolean;
  model: string;
}

/**
 * Starts a fault proxy on 127.0.0.1 in front of `options.target` and resolves once it is listening.
 * Throws {@link FaultRuleError} for an invalid initial rule and a `TypeError` for a bad target URL.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new TypeError(`fault proxy target must be an http: or https: URL, got "${options.target}"`);
  }
  // A gateway's base URL may carry a path prefix; the client's path goes after it.
  const prefix = target.pathname.replace(/\/+$/, '');
  const transport = target.protocol === 'https:' ? https : http;
  // Our own agent, so close() can drop its kept-alive sockets instead of leaving them to the process.
  const agent = new transport.Agent({ keepAlive: true });
  const log = options.log ?? ((): void => undefined);

  const rules: ActiveRule[] = [];
  const add = (rule: FaultRule): void => {
    validateRule(rule);
    // A copy, so later changes to the caller's object do not change a running rule.
    rules.push({ rule: structuredClone(rule), left: rule.count ?? 1 });
  };
  for (const rule of options.rules ?? []) add(rule);

  const stats: FaultProxyStats = { requests: 0, forwarded: 0, injected: {} };
  const upstreamCalls = new Set<http.ClientRequest>();
  // Aborted by close(): waits end early then, so no timer outlives the proxy.
  const closing = new AbortController();
  let counter = 0;

  /** Takes one use of the first rule that applies to a request calling `tool`. */
  const take = (tool: string | undefined): { rule: FaultRule; index: number; left: number } | undefined => {
    const index = rules.findIndex(
      (r) => r.left > 0 && (r.rule.match?.tool === undefined || r.rule.match.tool === tool),
    );
    const active = rules[index];
    if (active === undefined) return undefined;
    active.left -= 1;
    const result = { rule: active.rule, index: index + 1, left: active.left };
    if (active.left <= 0) rules.splice(index, 1);
    return result;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    counter += 1;
    const n = counter;
    stats.requests += 1;
    const raw = await readBody(req);
    const line = `#${n} ${req.method ?? '?'} ${req.url ?? '/'}`;
    if (raw === undefined) {
      log(`${line} → 413 (body over ${MAX_BODY_BYTES} bytes, not forwarded)`);
      sendError(res, 413, `fault proxy: request body exceeds ${MAX_BODY_BYTES} bytes`, n);
      return;
    }
    const info = describe(req, raw);
    const taken = info.isMessages ? take(info.tool) : undefined;
    const what = `${line}${info.tool ? ` tool=${info.tool}` : ''}${info.stream ? ' stream' : ''}`;
    if (taken === undefined) {
      log(`${what} → forwarded`);
      forward(req, res, raw, n, { kind: 'plain' });
      return;
    }

    const { rule } = taken;
    const label = ruleKindLabel(rule);
    stats.injected[label] = (stats.injected[label] ?? 0) + 1;
    log(
      `${what} → ${formatRule(rule)} (rule ${taken.index}, ${taken.left === Infinity ? 'unlimited' : taken.left} left)`,
    );

    switch (rule.kind) {
      case 'status':
        sendError(
          res,
          rule.status,
          `Fault proxy: ${errorTypeFor(rule.status)} (HTTP ${rule.status}) injected by Baton's fault proxy`,
          n,
          rule.retryAfterSeconds,
        );
        return;
      case 'hang':
        // Nothing is written: the client's timeout, an abort or close() ends the connection.
        return;
      case 'refusal':
        sendRefusal(res, info, n);
        return;
      case 'delay':
        // Cut short (a rejection) when the proxy closes.
        await delay(rule.ms, undefined, { signal: closing.signal }).catch(() => undefined);
        // The proxy may have closed, or the client given up, while we waited; then the target need not hear of it.
        if (closing.signal.aborted || res.destroyed) return;
        forward(req, res, raw, n, { kind: 'plain' });
        return;
      case 'drop-mid-stream':
        forward(req, res, raw, n, { kind: 'drop', afterBytes: rule.afterBytes });
        return;
      case 'truncate-json':
        forward(req, res, raw, n, { kind: 'truncate' });
        return;
    }
  };

  /** Sends the request on to the target and the reply back, applying `mode` to the reply. */
  const forward = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    body: Buffer,
    n: number,
    mode: ForwardMode,
  ): void => {
    stats.forwarded += 1;
    const headers = requestHeaders(req.rawHeaders, body.length);
    // The proxy must read the reply to corrupt it, which it cannot do through gzip.
    if (mode.kind === 'truncate') headers['accept-encoding'] = 'identity';
    const upstream = transport.request({
      protocol: target.protocol,
      hostname: target.hostname,
      port: target.port,
      path: prefix + (req.url ?? '/'),
      method: req.method,
      headers,
      agent,
    });
    upstreamCalls.add(upstream);
    upstream.once('close', () => upstreamCalls.delete(upstream));
    // A client that gives up (timeout, abort) should not leave the target working for nobody.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.on('error', (err) => {
      if (closing.signal.aborted || res.destroyed) return;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // A real gateway answers 502 when it cannot reach the API: retryable, and the message says why.
      sendError(res, 502, `fault proxy: cannot reach ${options.target}: ${err.message}`, n);
    });
    upstream.on('response', (reply) => {
      if (res.destroyed) {
        reply.destroy();
        return;
      }
      switch (mode.kind) {
        case 'plain':
          res.writeHead(reply.statusCode ?? 502, reply.statusMessage, responseHeaders(reply.rawHeaders));
          // pipeline, not pipe: a reply that breaks off must break the client's response too.
          pipeline(reply, res, () => undefined);
          return;
        case 'drop':
          dropReply(reply, res, mode.afterBytes);
          return;
        case 'truncate':
          truncateReply(reply, res);
          return;
      }
    });
    upstream.end(body);
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only a bug in the proxy gets here; answer like the API's internal error so it is visible.
      if (!res.headersSent && !res.destroyed) {
        sendError(
          res,
          500,
          `fault proxy internal error: ${err instanceof Error ? err.message : String(err)}`,
          0,
        );
      } else {
        res.destroy();
      }
    });
  });

  const port = await listenOnLoopback(server, options.port);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    add,
    clear: () => {
      rules.length = 0;
    },
    stats: () => ({ ...stats, injected: { ...stats.injected } }),
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing.abort();
        for (const call of upstreamCalls) call.destroy();
        server.close((err) => {
          agent.destroy();
          if (err) reject(err);
          else resolve();
        });
        // Hanging requests and idle keep-alive sockets would otherwise keep close() waiting forever.
        server.closeAllConnections();
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Reading requests

type ForwardMode = { kind: 'plain' } | { kind: 'drop'; afterBytes?: number } | { kind: 'truncate' };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads the whole body; undefined when it exceeds {@link MAX_BODY_BYTES}. */
function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Keep draining so the 413 can still be read by the client, but stop buffering.
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Reads what rule matching needs; a body that is not a JSON object simply matches no `tool`. */
function describe(req: http.IncomingMessage, raw: Buffer): RequestInfo {
  const path = (req.url ?? '/').split('?')[0];
  const info: RequestInfo = {
    isMessages: req.method === 'POST' && path === '/v1/messages',
    stream: false,
    model: 'unknown',
  };
  if (!info.isMessages) return info;
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch {
    return info;
  }
  if (!isRecord(body)) return info;
  info.stream = body.stream === true;
  if (typeof body.model === 'string') info.model = body.model;
  info.tool = toolToCall(body);
  return info;
}

/** See {@link FaultMatch.tool}. */
function toolToCall(body: Record<string, unknown>): string | undefined {
  const config = body.output_config;
  if (isRecord(config) && isRecord(config.format) && isRecord(config.format.schema)) {
    const title = config.format.schema.title;
    return typeof title === 'string' ? title : 'structured_output';
  }
  const choice = body.tool_choice;
  if (!isRecord(choice)) return undefined;
  if (choice.type === 'tool') return typeof choice.name === 'string' ? choice.name : undefined;
  if (choice.type !== 'any' || !Array.isArray(body.tools)) return undefined;
  const names = body.tools.flatMap((t) => (isRecord(t) && typeof t.name === 'string' ? [t.name] : []));
  return names.find((name) => name.startsWith('submit_')) ?? names[names.length - 1];
}

/** Names listed in `connection: a, b`, which are hop-by-hop for this message only. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() !== 'connection') continue;
    for (const t of (rawHeaders[i + 1] ?? '').split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

function isHopByHop(name: string, extra: Set<string>): boolean {
  const lower = name.toLowerCase();
  return HOP_BY_HOP.has(lower) || extra.has(lower);
}

/** The client's headers for the target: hop-by-hop ones and `host` dropped, `content-length` recomputed. */
function requestHeaders(rawHeaders: readonly string[], bodyLength: number): http.OutgoingHttpHeaders {
  const extra = connectionTokens(rawHeaders);
  const headers: http.OutgoingHttpHeaders = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    const value = rawHeaders[i + 1] ?? '';
    const lower = name.toLowerCase();
    // Node sets `host` from the target; the body length is set below from what was actually read.
    if (isHopByHop(lower, extra) || lower === 'host' || lower === 'content-length') continue;
    const previous = headers[lower];
    headers[lower] =
      previous === undefined
        ? value
        : Array.isArray(previous)
          ? [...previous, value]
          : [String(previous), value];
  }
  if (bodyLength > 0) headers['content-length'] = bodyLength;
  return headers;
}

/**
 * The target's headers for the client, as a flat name/value list so order, case and repeated headers
 * survive; hop-by-hop ones and any names in `omit` (lower case) dropped.
 */
function responseHeaders(rawHeaders: readonly string[], omit: readonly string[] = []): string[] {
  const extra = connectionTokens(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? '';
    if (isHopByHop(name, extra) || omit.includes(name.toLowerCase())) continue;
    out.push(name, rawHeaders[i + 1] ?? '');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Writing replies

function sendJson(
  res: http.ServerResponse,
  status: number,
  payload: unknown,
  headers: http.OutgoingHttpHeaders = {},
): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** An error in the real API's shape, with its `request-id` header, so the SDK builds the right class. */
function sendError(
  res: http.ServerResponse,
  status: number,
  message: string,
  n: number,
  retryAfterSeconds?: number,
): void {
  const requestId = `req_faultproxy_${n}`;
  const headers: http.OutgoingHttpHeaders = { 'request-id': requestId };
  if (retryAfterSeconds !== undefined) headers['retry-after'] = String(retryAfterSeconds);
  sendJson(
    res,
    status,
    { type: 'error', error: { type: errorTypeFor(status), message }, request_id: requestId },
    headers,
  );
}

/** The refusal rule's reply: a complete message, or the same as events for a streaming request. */
function sendRefusal(res: http.ServerResponse, info: RequestInfo, n: number): void {
  const usage = {
    input_tokens: 1,
    output_tokens: 1,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
  const message = {
    id: `msg_faultproxy_${n}`,
    type: 'message',
    role: 'assistant',
    model: info.model,
    content: [{ type: 'text', text: REFUSAL_TEXT }],
    stop_reason: 'refusal',
    stop_sequence: null,
    usage,
  };
  const headers = { 'request-id': `req_faultproxy_${n}` };
  if (!info.stream) {
    sendJson(res, 200, message, headers);
    return;
  }
  const events: Array<Record<string, unknown>> = [
    { type: 'message_start', message: { ...message, content: [], stop_reason: null } },
    { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
    { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: REFUSAL_TEXT } },
    { type: 'content_block_stop', index: 0 },
    {
      type: 'message_delta',
      delta: { stop_reason: 'refusal', stop_sequence: null },
      usage: { output_tokens: usage.output_tokens },
    },
    { type: 'message_stop' },
  ];
  res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.end(events.map((e) => `event: ${String(e.type)}\ndata: ${JSON.stringify(e)}\n\n`).join(''));
}

function isEventStream(reply: http.IncomingMessage): boolean {
  return (reply.headers['content-type'] ?? '').toLowerCase().startsWith('text/event-stream');
}

/**
 * The reply's body, decompressed: the proxy asks for `identity` before it corrupts a body, but a
 * target may compress anyway.
 */
function bodyStream(reply: http.IncomingMessage): NodeJS.ReadableStream {
  switch ((reply.headers['content-encoding'] ?? 'identity').toLowerCase()) {
    case 'gzip':
    case 'x-gzip':
      return reply.pipe(zlib.createGunzip());
    case 'deflate':
      return reply.pipe(zlib.createInflate());
    case 'br':
      return reply.pipe(zlib.createBrotliDecompress());
    default:
      return reply;
  }
}

/** Offset just past the first blank line (the end of the first server-sent event), if any. */
function firstEventEnd(buffer: Buffer): number | undefined {
  const match = /\r\n\r\n|\n\n|\r\r/.exec(buffer.toString('latin1'));
  // latin1 maps bytes one to one, so the string index is the byte offset.
  return match ? match.index + match[0].length : undefined;
}

/** Writes the last bytes before a cut, then destroys the connection once they have left. */
function cut(res: http.ServerResponse, reply: http.IncomingMessage, last: Buffer): void {
  reply.destroy();
  if (last.length > 0) {
    res.write(last, () => res.destroy());
    return;
  }
  // Nothing left to write: make sure the status and headers left, then cut.
  res.flushHeaders();
  setImmediate(() => res.destroy());
}

/** The drop-mid-stream rule: passes the reply through until the cut point, then cuts the socket. */
function dropReply(
  reply: http.IncomingMessage,
  res: http.ServerResponse,
  afterBytes: number | undefined,
): void {
  // Without content-length the reply goes chunked, so the missing end is visible to the client
  // even when the cut falls after the target's last byte.
  res.writeHead(
    reply.statusCode ?? 502,
    reply.statusMessage,
    responseHeaders(reply.rawHeaders, ['content-length']),
  );
  const sse = isEventStream(reply);
  if (afterBytes === undefined && !sse) {
    // Half the body needs its length: collect it all, then send the first half.
    const chunks: Buffer[] = [];
    reply.on('data', (chunk: Buffer) => chunks.push(chunk));
    reply.on('end', () => {
      const whole = Buffer.concat(chunks);
      cut(res, reply, whole.subarray(0, Math.floor(whole.length / 2)));
    });
    reply.on('error', () => res.destroy());
    return;
  }
  let sent = 0;
  // Bytes seen while looking for the end of the first event (a few hundred bytes at most).
  let head = Buffer.alloc(0);
  let done = false;
  const onData = (chunk: Buffer): void => {
    if (done) return;
    let limit = afterBytes;
    if (limit === undefined) {
      head = Buffer.concat([head, chunk]);
      const end = firstEventEnd(head);
      if (end !== undefined) limit = end;
    }
    if (limit !== undefined && sent + chunk.length >= limit) {
      done = true;
      cut(res, reply, chunk.subarray(0, limit - sent));
      return;
    }
    sent += chunk.length;
    res.write(chunk);
  };
  reply.on('data', onData);
  reply.on('end', () => {
    if (done) return;
    done = true;
    // The target finished before the cut point: cut anyway, before the chunked terminator.
    cut(res, reply, Buffer.alloc(0));
  });
  reply.on('error', () => res.destroy());
}

/** The truncate-json rule: a JSON body cut in half, or an event stream with its first answer fragment corrupted. */
function truncateReply(reply: http.IncomingMessage, res: http.ServerResponse): void {
  const status = reply.statusCode ?? 502;
  // The body is re-encoded by us: its old length and encoding no longer apply.
  const headers = responseHeaders(reply.rawHeaders, ['content-length', 'content-encoding']);
  const source = bodyStream(reply);
  if (isEventStream(reply)) {
    res.writeHead(status, reply.statusMessage, headers);
    pipeline(source, new CorruptFirstToolInput(), res, () => undefined);
    return;
  }
  const chunks: Buffer[] = [];
  source.on('data', (chunk: Buffer) => chunks.push(chunk));
  source.on('end', () => {
    const whole = Buffer.concat(chunks);
    const half = whole.subarray(0, Math.floor(whole.length / 2));
    res.writeHead(status, reply.statusMessage, [...headers, 'content-length', String(half.length)]);
    res.end(half);
  });
  source.on('error', () => res.destroy());
}

/** Cuts an answer fragment in half and ends it with a NUL, which is invalid anywhere in JSON. */
function corruptFragment(fragment: string): string {
  const chars = Array.from(fragment);
  return `${chars.slice(0, Math.floor(chars.length / 2)).join('')}\u0000`;
}

/**
 * Rewrites the first `input_json_delta` or `text_delta` event of a server-sent event stream and passes everything
 * else through. Events are only reassembled until that one has gone by; after it, chunks pass as
 * they come. Work is on bytes: separators are ASCII, so a complete event is complete UTF-8 and a
 * character split across chunks is never decoded half.
 */
class CorruptFirstToolInput extends Transform {
  private pending = Buffer.alloc(0);
  private corrupted = false;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.corrupted) {
      callback(null, chunk);
      return;
    }
    this.pending = Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    for (;;) {
      // latin1 maps bytes one to one, so string indexes are byte offsets.
      const match = /\r\n\r\n|\n\n|\r\r/.exec(this.pending.toString('latin1'));
      if (!match) break;
      const event = this.pending.subarray(0, match.index).toString('utf8');
      out.push(Buffer.from(this.rewrite(event) + match[0], 'utf8'));
      this.pending = this.pending.subarray(match.index + match[0].length);
      if (this.corrupted) {
        // Nothing more is rewritten: pass the rest through as it is.
        out.push(this.pending);
        this.pending = Buffer.alloc(0);
        break;
      }
    }
    callback(null, out.length > 0 ? Buffer.concat(out) : undefined);
  }

  override _flush(callback: TransformCallback): void {
    callback(null, this.pending.length > 0 ? this.pending : undefined);
  }

  /** The event, with its data replaced if it is the first answer delta. */
  private rewrite(event: string): string {
    const lines = event.split(/\r\n|\n|\r/);
    // Per the SSE spec, an event's data is its `data:` lines joined by newlines.
    const data = lines
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      return event;
    }
    if (!isRecord(parsed) || parsed.type !== 'content_block_delta' || !isRecord(parsed.delta)) return event;
    const delta = parsed.delta;
    const field =
      delta.type === 'input_json_delta' ? 'partial_json' : delta.type === 'text_delta' ? 'text' : '';
    const fragment = field ? delta[field] : undefined;
    if (typeof fragment !== 'string') return event;
    this.corrupted = true;
    const rewritten = { ...parsed, delta: { ...delta, [field]: corruptFragment(fragment) } };
    return [...lines.filter((l) => !l.startsWith('data:')), `data: ${JSON.stringify(rewritten)}`].join('\n');
  }
}
