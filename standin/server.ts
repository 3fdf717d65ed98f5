/**
 * The stand-in model: a local HTTP server that speaks the Anthropic Messages API.
 *
 * It replaces Anthropic in tests and in the offline demo. The real `@anthropic-ai/sdk` client is
 * pointed at it with `baseURL`, so everything between Baton and the wire (request building, retries,
 * error classes, stream assembly) is exercised for real; only the model is fake. Its answers are
 * deterministic and always say they come from an offline stand-in (see `replies.ts`).
 *
 * Tests can make it misbehave on purpose: injected faults (HTTP errors, hangs, dropped connections)
 * and a `respond` hook that overrides the reply to one request. Only Node's `http` module is used.
 *
 * Prompt caching works as the real API reports it: a request whose tools or system blocks carry
 * `cache_control` breakpoints writes the prompt up to each breakpoint to a cache (by content hash, per
 * model) the first time, reported as `cache_creation_input_tokens`; a later request with the same
 * prefix reads it, reported as `cache_read_input_tokens`; `input_tokens` is the rest. Entries last
 * for the server's lifetime (the real API's last five minutes, or an hour, after their last use).
 */
import { serverToolProblem, type ServerToolBlock } from './server-tools';
import { customToolProblem, toolNamesProblem, toolTurnsProblem } from './tool-turns';
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { documentsProblem } from './documents';
import { answerToolName, defaultReply } from './replies';
import { errorTypeFor, listenOnLoopback } from './wire';

// ---------------------------------------------------------------------------------------------------------
// Public types

/** Options for {@link startStandIn}. */
export interface StandInOptions {
  /** TCP port to listen on; 0 (the default) picks a free one. The server binds 127.0.0.1 only. */
  port?: number;
  /** Simulated model latency per reply, in milliseconds (default 0). Spread across events when streaming. */
  latencyMs?: number;
  /** Test hook: return a reply to override the default behaviour, or undefined to fall through to it. */
  respond?: (req: StandInRequest) => StandInReply | undefined;
  /**
   * Whether `cache_control` breakpoints read and write a prompt cache (default true, like the real API).
   * `false` reports every input token as uncached, as if no request had breakpoints: for tests that
   * compare usage across runs whose calls reach the server a different number of times.
   */
  promptCache?: boolean;
  /**
   * The shortest prefix, in tokens, that a breakpoint caches (default 0: any). The real API has a
   * minimum per model (1024 to 4096 tokens on recent models); shorter prefixes are not cached and the
   * request is answered as if it had no breakpoint there.
   */
  minCacheableTokens?: number;
  /**
   * The model's context window in tokens (default 200,000, as Claude's): a request whose input is
   * longer, or whose input and `max_tokens` together are, is refused with the real API's 400.
   */
  contextTokens?: number;
}

/** A prompt-cache breakpoint on a block: the prompt up to and including that block is cached. */
export interface CacheControl {
  type: 'ephemeral';
  ttl?: '5m' | '1h';
}

/** A text content block, as in a request's `system` or a message's `content`. */
export interface TextBlockParam {
  type: 'text';
  text: string;
  cache_control?: CacheControl;
}

/** Any content block of a request message. Only `text`, `tool_use` and `tool_result` are looked into. */
export interface ContentBlockParam {
  type: string;
  [key: string]: unknown;
}

/** One message of the conversation. */
export interface MessageParam {
  role: 'user' | 'assistant';
  content: string | ContentBlockParam[];
}

/** A JSON schema, kept as plain data: the stand-in only searches it, never validates against it. */
export type JsonSchema = Record<string, unknown>;

/** A client tool the model may call. */
export interface ToolParam {
  name: string;
  description?: string;
  input_schema: JsonSchema;
  cache_control?: CacheControl;
}

/** A tool exactly as the request sent it, server tools included: the first part of the cacheable prompt. */
export interface ToolAsSent {
  /** The tool's JSON without its `cache_control`, so the marker itself does not change the prefix. */
  definition: string;
  cache_control?: CacheControl;
}

/** How the model must use tools; `tool` forces one named tool. */
export type ToolChoice = { type: 'auto' | 'any' | 'none' } | { type: 'tool'; name: string };

/** The typed subset of a `POST /v1/messages` body that the stand-in reads. */
export interface MessagesRequestBody {
  model: string;
  max_tokens: number;
  system?: string | TextBlockParam[];
  messages: MessageParam[];
  tools?: ToolParam[];
  tool_choice?: ToolChoice;
  /** Structured output: the answer is JSON text matching `format.schema`. */
  output_config?: { format?: { type: 'json_schema'; schema: JsonSchema } };
  stream?: boolean;
  /**
   * Every tool in the order sent, server tools included (`tools` keeps only the client tools the
   * stand-in can answer with). What the prompt cache and the input token count see.
   */
  toolsAsSent?: ToolAsSent[];
}

/** One request as seen by the `respond` hook and the default behaviour. */
export interface StandInRequest {
  body: MessagesRequestBody;
  /**
   * The answer the reply gives: with structured output (`output_config.format`), the schema's
   * `title` (Baton's `submit_plan`, `submit_findings`, `submit_report`), or `structured_output`;
   * otherwise the tool it will call: `tool_choice.name` when `tool_choice.type` is `tool`; with
   * `{type: "any"}`, an answer tool (`submit_*`) if offered, else the last tool. Undefined when no
   * answer is required. Faults' `tool` filter and `stats().byTool` use the same name.
   */
  toolName?: string;
  /** All text of the last user message that is not only tool results (a tool loop's prompt), joined by newlines. */
  userText: string;
  headers: http.IncomingHttpHeaders;
}

/** What the stand-in does with one request. */
export type StandInReply =
  /**
   * The answer: JSON text when the request asks for structured output, else a `tool_use` block for
   * the request's `toolName` (or its first tool when it requires none).
   */
  | { kind: 'tool'; input: unknown }
  /** Text; `stopReason: 'max_tokens'` says it was cut off at the request's max_tokens. */
  | { kind: 'text'; text: string; stopReason?: 'max_tokens' }
  /**
   * Several content blocks in one message, e.g. a call to a tool that was never offered next to the
   * answer: what a model steered by a prompt injection might send.
   */
  | { kind: 'blocks'; blocks: ReplyBlock[] }
  /** An error in the real Anthropic shape. */
  | { kind: 'error'; status: number; retryAfterSeconds?: number; message?: string }
  /** Accept the request and never answer: the client's timeout or heartbeat must catch it. */
  | { kind: 'hang' }
  /** Destroy the socket mid-response (when streaming: right after `message_start`). */
  | { kind: 'drop' };

/**
 * One content block of a `blocks` reply. Tool names are not checked against the request's tools.
 * A server tool's call and result (web search, web fetch) are sent as given (./server-tools.ts).
 */
export type ReplyBlock =
  { type: 'text'; text: string } | { type: 'tool_use'; name: string; input: unknown } | ServerToolBlock;

/** Counters since start or the last {@link StandIn.resetStats}. */
export interface StandInStats {
  /** HTTP requests received, on any path. */
  requests: number;
  /** Requests not yet answered (hanging ones included until the client gives up). */
  inFlight: number;
  /** The highest `inFlight` seen. */
  maxInFlight: number;
  /** Valid Messages requests per tool to call (see {@link StandInRequest.toolName}). */
  byTool: Record<string, number>;
  /** Replies that were not a model answer: HTTP errors, hangs and drops. */
  errors: number;
}

/**
 * A misbehaviour queued for the next matching request(s). Only well-formed Messages requests consume
 * faults: a 404 or a 400 for a bad body is answered as such and leaves the queue alone.
 */
export interface Fault {
  /** HTTP status for `kind: 'error'` (default 500). */
  status?: number;
  retryAfterSeconds?: number;
  /** Default `error`. */
  kind?: 'error' | 'hang' | 'drop';
  /** How many following matching requests get it; default 1. */
  count?: number;
  /** Only requests calling this tool get it (see {@link StandInRequest.toolName}); default any request. */
  tool?: string;
}

/** A running stand-in server. */
export interface StandIn {
  /** Base URL for the SDK's `baseURL`, e.g. `http://127.0.0.1:8787`. */
  url: string;
  port: number;
  stats(): StandInStats;
  resetStats(): void;
  /** Queues a fault. Faults take precedence over the `respond` hook and the default behaviour. */
  inject(fault: Fault): void;
  /** Stops listening and cuts every open connection (hanging requests included). */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Wire constants

/**
 * Models that answer a forced `tool_choice` (`any` or a named tool) with a 400, as Anthropic's
 * documentation says of Claude Opus 5.5, Sonnet 5.5 and Fable 5.1: they take structured outputs.
 */
const NO_FORCED_TOOL_USE = /^claude-(opus-5-5|sonnet-5-5|fable-5-1)\b/;

/** Bodies above this are refused with 413 rather than buffered (the real API's limit is 32 MB too). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;
/** Claude's context window, in tokens. */
const DEFAULT_CONTEXT_TOKENS = 200_000;
/** The token-counting endpoint: the same body as a message, less `max_tokens`; answers `{ input_tokens }`. */
const COUNT_TOKENS_PATH = '/v1/messages/count_tokens';

/** How many `input_json_delta` / `text_delta` events a streamed block is split into, at most. */
const STREAM_CHUNKS = 4;

/** The real API refuses requests with more `cache_control` breakpoints than this. */
const MAX_CACHE_BREAKPOINTS = 4;

// ---------------------------------------------------------------------------------------------------------
// Server

/**
 * Starts a stand-in model on 127.0.0.1 and resolves once it is listening.
 *
 * Per request the reply is chosen in this order: the first queued fault that matches, then the
 * `respond` hook, then the default behaviour (`replies.ts`).
 */
export async function startStandIn(options: StandInOptions = {}): Promise<StandIn> {
  const latencyMs = Math.max(0, options.latencyMs ?? 0);
  const faults: Array<Required<Pick<Fault, 'count'>> & Fault> = [];
  // Aborted by close(): latency waits end then instead of leaving the process busy. Each reply
  // waiting out its latency listens to it: as many listeners as requests in flight (128 at once in
  // the benchmark's fan-out), not a leak, so Node's warning past 10 is off for it.
  const closing = new AbortController();
  setMaxListeners(0, closing.signal);
  let counter = 0;
  let stats = emptyStats();
  // Prefix hashes written by earlier requests, for the server's lifetime.
  const promptCache = new Set<string>();
  const cacheOn = options.promptCache ?? true;
  const minCacheableTokens = Math.max(0, options.minCacheableTokens ?? 0);
  const contextTokens = options.contextTokens ?? DEFAULT_CONTEXT_TOKENS;

  /** Waits `ms`; rejects (an AbortError) when the stand-in closes meanwhile. */
  const sleep = async (ms: number): Promise<void> => {
    if (ms > 0) await delay(ms, undefined, { signal: closing.signal });
  };

  /** Takes one use of the first fault that applies to a request calling `toolName`. */
  const takeFault = (toolName: string | undefined): StandInReply | undefined => {
    const index = faults.findIndex((f) => f.tool === undefined || f.tool === toolName);
    const fault = faults[index];
    if (fault === undefined) return undefined;
    fault.count -= 1;
    if (fault.count <= 0) faults.splice(index, 1);
    const kind = fault.kind ?? 'error';
    if (kind !== 'error') return { kind };
    return { kind: 'error', status: fault.status ?? 500, retryAfterSeconds: fault.retryAfterSeconds };
  };

  const sendError = (
    res: http.ServerResponse,
    status: number,
    message: string,
    retryAfterSeconds?: number,
  ): void => {
    stats.errors += 1;
    if (retryAfterSeconds !== undefined) res.setHeader('retry-after', String(retryAfterSeconds));
    if (status === 405) res.setHeader('allow', 'POST');
    const requestId = res.getHeader('request-id');
    sendJson(res, status, {
      type: 'error',
      error: { type: errorTypeFor(status), message },
      request_id: typeof requestId === 'string' ? requestId : null,
    });
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    counter += 1;
    const n = counter;
    stats.requests += 1;
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    // Stats may be reset while this request is open; decrement the object it was counted in.
    const counted = stats;
    res.once('close', () => {
      counted.inFlight -= 1;
    });
    res.setHeader('request-id', `req_standin_${n}`);

    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/v1/messages' && path !== COUNT_TOKENS_PATH) {
      req.resume();
      return sendError(res, 404, `Not found: ${req.method ?? 'GET'} ${path}`);
    }
    if (req.method !== 'POST') {
      req.resume();
      return sendError(res, 405, `Method ${req.method ?? ''} not allowed on ${path}; use POST`);
    }
    // Any key is accepted, but a request with none is refused like the real API would.
    if (req.headers['x-api-key'] === undefined && req.headers['authorization'] === undefined) {
      req.resume();
      return sendError(res, 401, 'x-api-key header is required');
    }

    const raw = await readBody(req);
    if (raw === undefined) {
      return sendError(res, 413, `Request exceeds the maximum size of ${MAX_BODY_BYTES} bytes`);
    }
    const counting = path === COUNT_TOKENS_PATH;
    const parsed = parseBody(raw, counting ? 'count' : 'create');
    if (typeof parsed === 'string') return sendError(res, 400, parsed);

    const body = parsed;
    const input = inputTokens(body);
    if (counting) return sendJson(res, 200, { input_tokens: input });
    if (input > contextTokens) {
      return sendError(res, 400, `prompt is too long: ${input} tokens > ${contextTokens} maximum`);
    }
    if (input + body.max_tokens > contextTokens) {
      return sendError(
        res,
        400,
        `input length and \`max_tokens\` exceed context limit: ${input} + ${body.max_tokens} > ${contextTokens}, decrease input length or \`max_tokens\` and try again`,
      );
    }
    const toolName = answerToolName(body);
    if (toolName !== undefined) stats.byTool[toolName] = (stats.byTool[toolName] ?? 0) + 1;
    const request: StandInRequest = { body, toolName, userText: lastUserText(body), headers: req.headers };

    let reply = takeFault(toolName);
    if (reply === undefined && options.respond) {
      try {
        reply = options.respond(request);
      } catch (err) {
        // A broken hook must fail the one request visibly, not the server.
        return sendError(
          res,
          500,
          `stand-in respond hook threw: ${err instanceof Error ? err.message : String(err)}`,
        );
      }
    }
    reply ??= defaultReply(request);
    // A model told `tool_choice: none` calls no tool: a script that does is wrong, not the client.
    if (
      body.tool_choice?.type === 'none' &&
      reply.kind === 'blocks' &&
      reply.blocks.some((b) => b.type === 'tool_use')
    )
      return sendError(res, 500, 'stand-in script answered tool_choice "none" with a tool_use block');

    switch (reply.kind) {
      case 'error':
        return sendError(
          res,
          reply.status,
          reply.message ?? defaultErrorMessage(reply.status),
          reply.retryAfterSeconds,
        );
      case 'hang':
        // Nothing is written; 'close' fires (and inFlight drops) when the client gives up or close() runs.
        stats.errors += 1;
        return;
      case 'drop':
        stats.errors += 1;
        if (!body.stream) {
          // Cut before any byte is sent: the SDK reports that as APIConnectionError, like a real
          // connection reset. (A body cut half-way surfaces as a bare `TypeError: terminated`.)
          await sleep(latencyMs);
          res.destroy();
          return;
        }
        break;
      default:
        break;
    }

    // The cache is written when the answer starts, as with the real API (a dropped stream included).
    const cached = cacheOn ? usePromptCache(body, promptCache, minCacheableTokens) : NO_CACHE_USE;
    const message = buildMessage(n, request, reply, cached);
    if (body.stream) {
      await streamMessage(res, message, latencyMs, sleep, reply.kind === 'drop');
    } else {
      await sleep(latencyMs);
      if (!res.destroyed) sendJson(res, 200, message);
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only a bug in the stand-in gets here, or a wait cut short by close(); answer a bug like the
      // real API's internal error.
      if (!res.headersSent && !res.destroyed && !closing.signal.aborted) {
        sendError(res, 500, `stand-in internal error: ${err instanceof Error ? err.message : String(err)}`);
      } else {
        res.destroy();
      }
    });
  });

  const port = await listenOnLoopback(server, options.port);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats: () => ({ ...stats, byTool: { ...stats.byTool } }),
    resetStats: () => {
      // In-flight requests stay counted: they are still open.
      stats = { ...emptyStats(), inFlight: stats.inFlight, maxInFlight: stats.inFlight };
    },
    inject: (fault) => {
      faults.push({ ...fault, count: Math.max(1, fault.count ?? 1) });
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((err) => (err ? reject(err) : resolve()));
        // Hanging requests and idle keep-alive sockets would otherwise keep close() waiting forever.
        server.closeAllConnections();
      }),
  };
}

function emptyStats(): StandInStats {
  return { requests: 0, inFlight: 0, maxInFlight: 0, byTool: {}, errors: 0 };
}

function defaultErrorMessage(status: number): string {
  return `Stand-in fault: ${errorTypeFor(status)} (HTTP ${status}) injected by the offline stand-in model`;
}

// ---------------------------------------------------------------------------------------------------------
// Reading and checking requests

/** Reads the whole body; undefined when it exceeds {@link MAX_BODY_BYTES}. */
function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      // Keep draining so the reply can still be read by the client, but stop buffering.
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses and checks a Messages request body. Returns the typed body, or the error message for a
 * 400 that names the offending field the way the real API does (`messages: Field required`).
 * `count`: a token-counting request, which has no `max_tokens`.
 */
export function parseBody(raw: string, kind: 'create' | 'count' = 'create'): MessagesRequestBody | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    return `There was an error parsing the body of your request: ${err instanceof Error ? err.message : 'invalid JSON'}`;
  }
  if (!isRecord(parsed)) return 'The request body must be a JSON object';
  if (kind === 'count' && parsed.max_tokens !== undefined)
    return 'max_tokens: Extra inputs are not permitted';
  // A count has no answer to bound: checked as a message of one output token.
  const json = kind === 'count' ? { ...parsed, max_tokens: 1 } : parsed;
  for (const field of ['model', 'max_tokens', 'messages']) {
    if (json[field] === undefined) return `${field}: Field required`;
  }
  const {
    model,
    max_tokens: maxTokens,
    messages,
    system,
    tools,
    tool_choice: toolChoice,
    output_config: outputConfig,
    stream,
  } = json;
  if (typeof model !== 'string' || model === '') return 'model: Input should be a non-empty string';
  if (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1) {
    return 'max_tokens: Input should be a positive integer';
  }
  if (!Array.isArray(messages) || messages.length === 0) return 'messages: Input should be a non-empty list';

  const checkedMessages: MessageParam[] = [];
  for (const [i, m] of messages.entries()) {
    if (!isRecord(m) || (m.role !== 'user' && m.role !== 'assistant')) {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    const content = m.content;
    if (typeof content === 'string') {
      checkedMessages.push({ role: m.role, content });
    } else if (Array.isArray(content) && content.every((b) => isRecord(b) && typeof b.type === 'string')) {
      checkedMessages.push({ role: m.role, content: content as ContentBlockParam[] });
    } else {
      return `messages.${i}.content: Input should be a string or a list of content blocks`;
    }
  }

  const body: MessagesRequestBody = { model, max_tokens: maxTokens, messages: checkedMessages };
  // Cache breakpoints anywhere in the request count towards the API's limit of four.
  let breakpoints = 0;
  const cacheControl = (block: Record<string, unknown>, where: string): CacheControl | string | undefined => {
    if (block.cache_control === undefined || block.cache_control === null) return undefined;
    const checked = checkCacheControl(block.cache_control, `${where}.cache_control`);
    if (typeof checked !== 'string') breakpoints += 1;
    return checked;
  };
  for (const [i, m] of messages.entries()) {
    const content = (m as { content: unknown }).content;
    if (!Array.isArray(content)) continue;
    for (const [j, b] of (content as Record<string, unknown>[]).entries()) {
      const checked = cacheControl(b, `messages.${i}.content.${j}`);
      if (typeof checked === 'string') return checked;
    }
  }

  if (system !== undefined) {
    if (typeof system === 'string') body.system = system;
    else if (
      Array.isArray(system) &&
      system.every((b) => isRecord(b) && b.type === 'text' && typeof b.text === 'string')
    ) {
      const blocks: TextBlockParam[] = [];
      for (const [i, b] of (system as Array<Record<string, unknown>>).entries()) {
        const checked = cacheControl(b, `system.${i}`);
        if (typeof checked === 'string') return checked;
        blocks.push({ type: 'text', text: b.text as string, ...(checked ? { cache_control: checked } : {}) });
      }
      body.system = blocks;
    } else return 'system: Input should be a string or a list of text blocks';
  }

  if (tools !== undefined) {
    if (!Array.isArray(tools)) return 'tools: Input should be a list';
    const checkedTools: ToolParam[] = [];
    const asSent: ToolAsSent[] = [];
    for (const [i, t] of tools.entries()) {
      if (!isRecord(t) || typeof t.name !== 'string') return `tools.${i}.name: Field required`;
      const checked = cacheControl(t, `tools.${i}`);
      if (typeof checked === 'string') return checked;
      // The marker itself is not part of the cached content.
      const definition: Record<string, unknown> = { ...t };
      delete definition.cache_control;
      asSent.push({ definition: JSON.stringify(definition), ...(checked ? { cache_control: checked } : {}) });
      // Server tools (web search, web fetch) carry a versioned `type` and no input schema; the real
      // API runs them itself: the stand-in checks their definitions as it does, then ignores them.
      if (typeof t.type === 'string' && t.type !== 'custom') {
        const problem = serverToolProblem(t, i);
        if (problem) return problem;
        continue;
      }
      const custom = customToolProblem(t, i);
      if (custom) return custom;
      const tool: ToolParam = { name: t.name, input_schema: t.input_schema as JsonSchema };
      if (typeof t.description === 'string') tool.description = t.description;
      if (checked) tool.cache_control = checked;
      checkedTools.push(tool);
    }
    body.tools = checkedTools;
    body.toolsAsSent = asSent;
    const names = toolNamesProblem(tools.map((t) => (t as { name: string }).name));
    if (names) return names;
  }
  const turns = toolTurnsProblem(checkedMessages, Array.isArray(tools) && tools.length > 0);
  if (turns) return turns;
  if (breakpoints > MAX_CACHE_BREAKPOINTS) {
    return `A maximum of ${MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found ${breakpoints}.`;
  }

  if (toolChoice !== undefined) {
    if (!isRecord(toolChoice)) return 'tool_choice: Input should be an object';
    const type = toolChoice.type;
    if (type === 'tool') {
      const name = toolChoice.name;
      if (typeof name !== 'string') return 'tool_choice.name: Field required';
      if (!body.tools?.some((t) => t.name === name)) {
        return `tool_choice.name: Tool '${name}' not found in tools`;
      }
      body.tool_choice = { type, name };
    } else if (type === 'auto' || type === 'any' || type === 'none') {
      body.tool_choice = { type };
    } else {
      return "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'";
    }
    // Like the real API: current models refuse to be forced to call a tool.
    if ((type === 'tool' || type === 'any') && NO_FORCED_TOOL_USE.test(model)) {
      return `tool_choice: forced tool use (type '${type}') is not supported on ${model}; use tool_choice 'auto' or structured outputs (output_config.format)`;
    }
  }

  if (outputConfig !== undefined) {
    if (!isRecord(outputConfig)) return 'output_config: Input should be an object';
    const format = outputConfig.format;
    if (format !== undefined && format !== null) {
      if (!isRecord(format) || format.type !== 'json_schema') {
        return "output_config.format.type: Input should be 'json_schema'";
      }
      if (!isRecord(format.schema)) return 'output_config.format.schema: Field required';
      body.output_config = { format: { type: 'json_schema', schema: format.schema } };
    }
  }

  const documents = documentsProblem(checkedMessages, body.output_config?.format !== undefined);
  if (documents) return documents;

  if (stream !== undefined) {
    if (typeof stream !== 'boolean') return 'stream: Input should be a valid boolean';
    body.stream = stream;
  }
  return body;
}

/** Checks one `cache_control` value; returns it typed, or the 400 message naming the field. */
function checkCacheControl(value: unknown, where: string): CacheControl | string {
  if (!isRecord(value) || value.type !== 'ephemeral') return `${where}.type: Input should be 'ephemeral'`;
  if (value.ttl === undefined) return { type: 'ephemeral' };
  if (value.ttl !== '5m' && value.ttl !== '1h') return `${where}.ttl: Input should be '5m' or '1h'`;
  return { type: 'ephemeral', ttl: value.ttl };
}

/** The text of one content block: text blocks, tool inputs and tool results (for token counting). */
function blockText(block: ContentBlockParam): string {
  if (typeof block.text === 'string') return block.text;
  if (block.type === 'tool_use') return JSON.stringify(block.input ?? {});
  if (block.type === 'tool_result') {
    const content = block.content;
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
      return content.map((c) => (isRecord(c) && typeof c.text === 'string' ? c.text : '')).join('\n');
    }
  }
  return '';
}

function messageText(message: MessageParam): string {
  return typeof message.content === 'string' ? message.content : message.content.map(blockText).join('\n');
}

/** The text of the last user message that is not only tool results: the prompt a tool loop's turns share. */
function lastUserText(body: MessagesRequestBody): string {
  const onlyResults = (m: MessageParam): boolean =>
    typeof m.content !== 'string' && m.content.length > 0 && m.content.every((b) => b.type === 'tool_result');
  const last = [...body.messages].reverse().find((m) => m.role === 'user' && !onlyResults(m));
  return last ? messageText(last) : '';
}

/** Rough token count, as the spec of the stand-in says: a token is about four characters. */
function tokens(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

/** One block of the prompt's start, in the order the API reads it: tools, then system. */
interface PrefixBlock {
  text: string;
  breakpoint?: CacheControl;
}

/** The blocks a cache breakpoint can cover: each tool as sent, then each system block. */
function prefixBlocks(body: MessagesRequestBody): PrefixBlock[] {
  const tools = (body.toolsAsSent ?? []).map((t) => ({ text: t.definition, breakpoint: t.cache_control }));
  const system =
    typeof body.system === 'string'
      ? [{ text: body.system }]
      : (body.system ?? []).map((b) => ({ text: b.text, breakpoint: b.cache_control }));
  return [...tools, ...system];
}

/** All input tokens of a request, cached or not: the prefix blocks and the messages. */
function inputTokens(body: MessagesRequestBody): number {
  const prefix = prefixBlocks(body).reduce((n, b) => n + b.text.length, 0);
  const messages = body.messages.map(messageText).join('\n');
  return tokens(prefix + messages.length);
}

/** How a request used the prompt cache, in tokens. */
interface CacheUse {
  read: number;
  created5m: number;
  created1h: number;
}

const NO_CACHE_USE: CacheUse = { read: 0, created5m: 0, created1h: 0 };

/**
 * Looks a request's breakpoints up in `cache` and records them there, as the real API does: the
 * longest prefix already cached is read; everything from there to the last breakpoint is written
 * (attributed to the TTL of the breakpoint that ends each part). A prefix is keyed by the model and
 * the content hash of every block up to its breakpoint. Prefixes under `minTokens` are not cached.
 */
function usePromptCache(body: MessagesRequestBody, cache: Set<string>, minTokens: number): CacheUse {
  const hash = createHash('sha256').update(body.model);
  const points: Array<{ key: string; tokens: number; ttl: '5m' | '1h' }> = [];
  let chars = 0;
  for (const block of prefixBlocks(body)) {
    hash.update(`\u0000${block.text}`);
    chars += block.text.length;
    if (!block.breakpoint) continue;
    const size = tokens(chars);
    if (size >= minTokens) {
      points.push({ key: hash.copy().digest('hex'), tokens: size, ttl: block.breakpoint.ttl ?? '5m' });
    }
  }
  if (points.length === 0) return NO_CACHE_USE;
  const hit = points.map((p) => cache.has(p.key)).lastIndexOf(true);
  const use: CacheUse = { read: hit >= 0 ? points[hit]!.tokens : 0, created5m: 0, created1h: 0 };
  let covered = use.read;
  for (const point of points.slice(hit + 1)) {
    if (point.ttl === '1h') use.created1h += point.tokens - covered;
    else use.created5m += point.tokens - covered;
    covered = point.tokens;
  }
  for (const point of points) cache.add(point.key);
  return use;
}

// ---------------------------------------------------------------------------------------------------------
// Writing replies

type OutputBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | ServerToolBlock;

/** A complete, non-streamed Messages API response. */
interface OutputMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: OutputBlock[];
  stop_reason: 'tool_use' | 'end_turn' | 'max_tokens';
  stop_sequence: null;
  usage: {
    input_tokens: number;
    output_tokens: number;
    cache_creation_input_tokens: number;
    cache_read_input_tokens: number;
    cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
  };
}

/** Builds the reply message. A `drop` gets an empty text message: only its `message_start` is ever sent. */
function buildMessage(
  n: number,
  request: StandInRequest,
  reply: StandInReply,
  cached: CacheUse = NO_CACHE_USE,
): OutputMessage {
  let blocks: OutputBlock[];
  if (reply.kind === 'tool' && request.body.output_config?.format) {
    // Structured output: the answer is the JSON text itself.
    blocks = [{ type: 'text', text: JSON.stringify(reply.input ?? {}) }];
  } else if (reply.kind === 'tool') {
    const name = request.toolName ?? request.body.tools?.[0]?.name ?? 'tool';
    blocks = [{ type: 'tool_use', id: `toolu_standin_${n}`, name, input: reply.input ?? {} }];
  } else if (reply.kind === 'blocks') {
    blocks = reply.blocks.map((b, i) =>
      b.type === 'tool_use' ? { ...b, id: `toolu_standin_${n}_${i}`, input: b.input ?? {} } : b,
    );
  } else {
    blocks = [{ type: 'text', text: reply.kind === 'text' ? reply.text : '' }];
  }
  const outputChars = blocks
    .map((b) =>
      b.type === 'text'
        ? b.text.length
        : b.type === 'tool_use' || b.type === 'server_tool_use'
          ? JSON.stringify(b.input).length
          : 0,
    )
    .reduce((a, b) => a + b, 0);
  return {
    id: `msg_standin_${n}`,
    type: 'message',
    role: 'assistant',
    model: request.body.model,
    content: blocks,
    stop_reason:
      reply.kind === 'text' && reply.stopReason
        ? reply.stopReason
        : blocks.some((b) => b.type === 'tool_use')
          ? 'tool_use'
          : 'end_turn',
    stop_sequence: null,
    // Total input is input_tokens + cache reads + cache writes, as the API reports it.
    usage: {
      input_tokens: inputTokens(request.body) - cached.read - cached.created5m - cached.created1h,
      output_tokens: tokens(outputChars),
      cache_creation_input_tokens: cached.created5m + cached.created1h,
      cache_read_input_tokens: cached.read,
      cache_creation: {
        ephemeral_5m_input_tokens: cached.created5m,
        ephemeral_1h_input_tokens: cached.created1h,
      },
    },
  };
}

function sendJson(res: http.ServerResponse, status: number, payload: unknown): void {
  const text = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Splits text into at most {@link STREAM_CHUNKS} pieces, by code point so no character is cut in two. */
function chunk(text: string): string[] {
  const chars = Array.from(text);
  const size = Math.max(1, Math.ceil(chars.length / STREAM_CHUNKS));
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(''));
  return pieces;
}

/** The server-sent events for a message, in the order and shape the real API uses. */
function streamEvents(message: OutputMessage): Array<{ type: string; data: Record<string, unknown> }> {
  const blockEvents = message.content.flatMap((block, index) => {
    // A tool result comes whole in its start event, as the API sends it; a call's input and text in deltas.
    const startBlock =
      block.type === 'tool_use' || block.type === 'server_tool_use'
        ? { ...block, input: {} }
        : block.type === 'text'
          ? { type: 'text', text: '' }
          : block;
    const deltas =
      block.type === 'tool_use' || block.type === 'server_tool_use'
        ? chunk(JSON.stringify(block.input)).map((partial_json) => ({
            type: 'input_json_delta',
            partial_json,
          }))
        : block.type === 'text'
          ? chunk(block.text).map((text) => ({ type: 'text_delta', text }))
          : [];
    return [
      { type: 'content_block_start', data: { index, content_block: startBlock } },
      ...(index === 0 ? [{ type: 'ping', data: {} }] : []),
      ...deltas.map((delta) => ({ type: 'content_block_delta', data: { index, delta } })),
      { type: 'content_block_stop', data: { index } },
    ];
  });
  return [
    {
      type: 'message_start',
      data: {
        message: {
          ...message,
          content: [],
          stop_reason: null,
          usage: { ...message.usage, output_tokens: 1 },
        },
      },
    },
    ...blockEvents,
    {
      type: 'message_delta',
      // Like the real API: cumulative counts, input and cache figures repeated from message_start.
      data: {
        delta: { stop_reason: message.stop_reason, stop_sequence: null },
        usage: {
          input_tokens: message.usage.input_tokens,
          cache_creation_input_tokens: message.usage.cache_creation_input_tokens,
          cache_read_input_tokens: message.usage.cache_read_input_tokens,
          output_tokens: message.usage.output_tokens,
        },
      },
    },
    { type: 'message_stop', data: {} },
  ];
}

/**
 * Streams a message as server-sent events, spreading the latency over the events. With `drop`, the
 * socket is destroyed right after `message_start` has been flushed.
 */
async function streamMessage(
  res: http.ServerResponse,
  message: OutputMessage,
  latencyMs: number,
  sleep: (ms: number) => Promise<void>,
  drop: boolean,
): Promise<void> {
  const events = streamEvents(message);
  const pause = Math.round(latencyMs / events.length);
  await sleep(pause);
  if (res.destroyed) return;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const [i, event] of events.entries()) {
    if (i > 0) await sleep(pause);
    // The client may have given up (timeout, abort) while we slept.
    if (res.destroyed) return;
    const frame = `event: ${event.type}\ndata: ${JSON.stringify({ type: event.type, ...event.data })}\n\n`;
    if (drop) {
      // Wait until message_start has left, then cut the connection without finishing the response.
      res.write(frame, () => res.destroy());
      return;
    }
    res.write(frame);
  }
  res.end();
}
