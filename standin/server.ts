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
 */
import http from 'node:http';
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
}

/** A text content block, as in a request's `system` or a message's `content`. */
export interface TextBlockParam {
  type: 'text';
  text: string;
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
  stream?: boolean;
}

/** One request as seen by the `respond` hook and the default behaviour. */
export interface StandInRequest {
  body: MessagesRequestBody;
  /**
   * The tool the reply will call: `tool_choice.name` when `tool_choice.type` is `tool`; with
   * `{type: "any"}`, Baton's answer tool (`submit_*`) if offered, else the last tool. Undefined when
   * no tool is required. Faults' `tool` filter and `stats().byTool` use the same name.
   */
  toolName?: string;
  /** All text of the last user message, joined by newlines. */
  userText: string;
  headers: http.IncomingHttpHeaders;
}

/** What the stand-in does with one request. */
export type StandInReply =
  /** A `tool_use` block for the request's `toolName` (or its first tool when it requires none). */
  | { kind: 'tool'; input: unknown }
  | { kind: 'text'; text: string }
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

/** One content block of a `blocks` reply. Tool names are not checked against the request's tools. */
export type ReplyBlock = { type: 'text'; text: string } | { type: 'tool_use'; name: string; input: unknown };

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

/** Bodies above this are refused with 413 rather than buffered (the real API's limit is 32 MB too). */
const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** How many `input_json_delta` / `text_delta` events a streamed block is split into, at most. */
const STREAM_CHUNKS = 4;

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
  // Latency timers are tracked so close() can clear them instead of leaving the process busy.
  const timers = new Set<NodeJS.Timeout>();
  let counter = 0;
  let stats = emptyStats();

  const sleep = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const timer = setTimeout(() => {
            timers.delete(timer);
            resolve();
          }, ms);
          timers.add(timer);
        });

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
    if (path !== '/v1/messages') {
      req.resume();
      return sendError(res, 404, `Not found: ${req.method ?? 'GET'} ${path}`);
    }
    if (req.method !== 'POST') {
      req.resume();
      return sendError(res, 405, `Method ${req.method ?? ''} not allowed on /v1/messages; use POST`);
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
    const parsed = parseBody(raw);
    if (typeof parsed === 'string') return sendError(res, 400, parsed);

    const body = parsed;
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

    const message = buildMessage(n, request, reply);
    if (body.stream) {
      await streamMessage(res, message, latencyMs, sleep, reply.kind === 'drop');
    } else {
      await sleep(latencyMs);
      if (!res.destroyed) sendJson(res, 200, message);
    }
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only a bug in the stand-in gets here; answer like the real API's internal error.
      if (!res.headersSent && !res.destroyed) {
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
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
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
 */
export function parseBody(raw: string): MessagesRequestBody | string {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return `There was an error parsing the body of your request: ${err instanceof Error ? err.message : 'invalid JSON'}`;
  }
  if (!isRecord(json)) return 'The request body must be a JSON object';

  for (const field of ['model', 'max_tokens', 'messages']) {
    if (json[field] === undefined) return `${field}: Field required`;
  }
  const { model, max_tokens: maxTokens, messages, system, tools, tool_choice: toolChoice, stream } = json;
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

  if (system !== undefined) {
    if (typeof system === 'string') body.system = system;
    else if (
      Array.isArray(system) &&
      system.every((b) => isRecord(b) && b.type === 'text' && typeof b.text === 'string')
    ) {
      body.system = system as TextBlockParam[];
    } else return 'system: Input should be a string or a list of text blocks';
  }

  if (tools !== undefined) {
    if (!Array.isArray(tools)) return 'tools: Input should be a list';
    const checkedTools: ToolParam[] = [];
    for (const [i, t] of tools.entries()) {
      if (!isRecord(t) || typeof t.name !== 'string') return `tools.${i}.name: Field required`;
      // Server tools (web search and the like) carry a versioned `type` and no input schema; the
      // real API runs them itself, the stand-in accepts and ignores them.
      if (typeof t.type === 'string' && t.type !== 'custom') continue;
      if (!isRecord(t.input_schema)) return `tools.${i}.input_schema: Field required`;
      const tool: ToolParam = { name: t.name, input_schema: t.input_schema };
      if (typeof t.description === 'string') tool.description = t.description;
      checkedTools.push(tool);
    }
    body.tools = checkedTools;
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
  }

  if (stream !== undefined) {
    if (typeof stream !== 'boolean') return 'stream: Input should be a valid boolean';
    body.stream = stream;
  }
  return body;
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

function lastUserText(body: MessagesRequestBody): string {
  const last = [...body.messages].reverse().find((m) => m.role === 'user');
  return last ? messageText(last) : '';
}

/** Rough token count, as the spec of the stand-in says: a token is about four characters. */
function tokens(chars: number): number {
  return Math.max(1, Math.ceil(chars / 4));
}

function inputTokens(body: MessagesRequestBody): number {
  const system =
    typeof body.system === 'string' ? body.system : (body.system ?? []).map((b) => b.text).join('\n');
  const messages = body.messages.map(messageText).join('\n');
  const tools = body.tools ? JSON.stringify(body.tools) : '';
  return tokens(system.length + messages.length + tools.length);
}

// ---------------------------------------------------------------------------------------------------------
// Writing replies

type OutputBlock =
  { type: 'text'; text: string } | { type: 'tool_use'; id: string; name: string; input: unknown };

/** A complete, non-streamed Messages API response. */
interface OutputMessage {
  id: string;
  type: 'message';
  role: 'assistant';
  model: string;
  content: OutputBlock[];
  stop_reason: 'tool_use' | 'end_turn';
  stop_sequence: null;
  usage: {
    input_tokens: number;
    output_tokens: number;
    cache_creation_input_tokens: number;
    cache_read_input_tokens: number;
  };
}

/** Builds the reply message. A `drop` gets an empty text message: only its `message_start` is ever sent. */
function buildMessage(n: number, request: StandInRequest, reply: StandInReply): OutputMessage {
  let blocks: OutputBlock[];
  if (reply.kind === 'tool') {
    const name = request.toolName ?? request.body.tools?.[0]?.name ?? 'tool';
    blocks = [{ type: 'tool_use', id: `toolu_standin_${n}`, name, input: reply.input ?? {} }];
  } else if (reply.kind === 'blocks') {
    blocks = reply.blocks.map((b, i) =>
      b.type === 'text' ? b : { ...b, id: `toolu_standin_${n}_${i}`, input: b.input ?? {} },
    );
  } else {
    blocks = [{ type: 'text', text: reply.kind === 'text' ? reply.text : '' }];
  }
  const outputChars = blocks
    .map((b) => (b.type === 'text' ? b.text.length : JSON.stringify(b.input).length))
    .reduce((a, b) => a + b, 0);
  return {
    id: `msg_standin_${n}`,
    type: 'message',
    role: 'assistant',
    model: request.body.model,
    content: blocks,
    stop_reason: blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: {
      input_tokens: inputTokens(request.body),
      output_tokens: tokens(outputChars),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
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
    const startBlock = block.type === 'tool_use' ? { ...block, input: {} } : { type: 'text', text: '' };
    const deltas =
      block.type === 'tool_use'
        ? chunk(JSON.stringify(block.input)).map((partial_json) => ({
            type: 'input_json_delta',
            partial_json,
          }))
        : chunk(block.text).map((text) => ({ type: 'text_delta', text }));
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
      data: {
        delta: { stop_reason: message.stop_reason, stop_sequence: null },
        usage: { output_tokens: message.usage.output_tokens },
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
