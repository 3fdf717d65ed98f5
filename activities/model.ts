/**
 * Every model call goes through here: one Anthropic client per worker, streaming with heartbeats,
 * structured output (a JSON schema as the output format), and the one place where SDK errors become Temporal
 * failures that do or do not retry.
 *
 * Design note on retries:
 *   1. The SDK's own retries are off (`maxRetries: 0`). Temporal's retry policy, from each agent's
 *      config, is the only retry layer, so attempts never multiply and every attempt is visible in
 *      the Web UI.
 *   2. A `retry-after` header (429, 529) becomes the failure's `nextRetryDelay`, so Temporal waits
 *      exactly as long as the API asked instead of its own backoff.
 *   3. Requests the API will refuse again (400, 401, 403, 404, 413, 422) fail at once as
 *      non-retryable, with a message that says what to fix.
 */
import Anthropic from '@anthropic-ai/sdk';
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { activityInfo, cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure, type Duration as TemporalDuration } from '@temporalio/common';
import { zodOutputFormat } from '@anthropic-ai/sdk/helpers/zod';
import type { z } from 'zod';
import { FailureTypes } from '../contract/failures';
import { classifyModelError } from './model-errors';
import { usageCostUsd } from '../contract/usage';
import { durationMs, type SnapshotAgent } from '../config/schema';
import { contextTokensOf } from '../config/agents';
import type { RefusedToolCall } from '../contract/activities';
import type { Retrieval } from '../contract/citations';
import { retrievalsIn } from './citations';
import type { TokenUsage } from '../contract/messages';
import { liveWords } from '../contract/live';

let cachedClient: { key: string; client: Anthropic } | undefined;

/** One client per worker process and (key, base URL) pair. */
function clientFor(apiKey: string | undefined, baseURL: string | undefined): Anthropic {
  if (!apiKey) {
    throw ApplicationFailure.create({
      message:
        "ANTHROPIC_API_KEY is not set in the worker's environment (for offline runs, point ANTHROPIC_BASE_URL at `npm run stand-in` and set any key)",
      type: FailureTypes.ModelAuthFailed,
      nonRetryable: true,
    });
  }
  const key = `${baseURL ?? ''}\u0000${apiKey}`;
  if (cachedClient?.key !== key) {
    cachedClient = { key, client: new Anthropic({ apiKey, baseURL: baseURL ?? null, maxRetries: 0 }) };
  }
  return cachedClient.client;
}

/**
 * A prompt-cache breakpoint: the API caches the prompt up to and including the marked block, for 5
 * minutes after its last use, and later requests with the same prefix read it at a fraction of the
 * input price (writing it costs a little more than input; see `prices` in config/agents.yaml).
 */
const CACHE_BREAKPOINT = { type: 'ephemeral' } as const;

export interface StructuredCall<T> {
  /** The agent, with the price of its model when the task's config lists one (for the cost estimate). */
  agent: SnapshotAgent;
  /** The user message: Baton's instructions, with untrusted material inside delimiters. */
  prompt: string;
  /** The task's documents (./documents.ts), sent before the prompt in the same user message. */
  documents?: Anthropic.DocumentBlockParam[];
  /**
   * The structured answer: validated with `schema`; the model is shown `shownSchema` when given (a
   * narrower view, e.g. the plan's agents as an enum) as its output format, titled `name`.
   */
  answer: { name: string; schema: z.ZodType<T>; shownSchema?: z.ZodType };
  /** Tools from the registry that the agent may use before it answers (see `tools.ts`). */
  extraTools?: Anthropic.ToolUnion[];
  /**
   * Client tools (MCP, issue 18) the model may ask for: their calls come back in `toolUse`, to be
   * made by the workflow (workflows/tool-loop.ts), never here.
   */
  clientTools?: Anthropic.Tool[];
  /** The conversation after the prompt: a tool loop's earlier turns (tool use, tool results). */
  turns?: Anthropic.MessageParam[];
  /** With client tools: `none` on a loop's last turn, which must answer. */
  toolChoice?: Anthropic.ToolChoice;
  /**
   * Count the prompt's tokens first (the API's token-counting endpoint) and refuse, with a
   * non-retryable `ContextTooLong`, a prompt that leaves less than the agent's `maxTokens` of its
   * context window (`contextTokens`) for the answer: nothing is spent on a call that cannot fit.
   */
  measure?: boolean;
  /** The plan step the call is for, shown with its live words (contract/live.ts). */
  step?: string;
  apiKey: string | undefined;
  baseURL: string | undefined;
}

export interface StructuredResult<T> {
  /** The parsed answer, or the problems when it was not JSON or did not match the schema. */
  parsed: { ok: true; value: T } | { ok: false; problems: string[] };
  usage: TokenUsage;
  model: string;
  /** Tool calls the model made that were not offered to it: refused, never executed. */
  refusedToolCalls: RefusedToolCall[];
  /** What the offered server tools returned (./citations.ts), read from the response's blocks, never its text. */
  retrievals?: Retrieval[];
  /** With client tools: the reply's calls of them (stop reason `tool_use`) and its whole content. */
  toolUse?: { calls: Anthropic.ToolUseBlock[]; content: Anthropic.ContentBlock[] };
}

/**
 * The tool calls in a reply that Baton refuses: any client tool call (Baton offers no client tools
 * and executes none: the registry holds only server tools, and answers come as structured output),
 * or a server tool that was not offered. Nothing here is ever executed.
 */
export function refusedToolCalls(
  content: readonly Anthropic.ContentBlock[],
  offered: readonly Anthropic.ToolUnion[],
  client: readonly Anthropic.Tool[] = [],
): RefusedToolCall[] {
  const offeredNames = new Set(offered.flatMap((t) => ('name' in t ? [t.name] : [])));
  const clientNames = new Set(client.map((t) => t.name));
  const clip = (name: string): string => name.replace(/[^\w.-]/g, '?').slice(0, 64);
  const refused: RefusedToolCall[] = [];
  for (const block of content) {
    if (block.type === 'tool_use' && !clientNames.has(block.name)) {
      refused.push({
        tool: clip(block.name),
        reason: offeredNames.has(block.name)
          ? 'a registry tool runs at the API, never on a worker'
          : 'not a tool declared for this agent in config',
      });
    } else if (block.type === 'server_tool_use' && !offeredNames.has(block.name)) {
      refused.push({ tool: clip(block.name), reason: 'not a tool declared for this agent in config' });
    }
  }
  return refused;
}

/** The JSON schema the API is given as the output format: its supported subset, titled with the answer's name. */
export function outputFormat(answer: StructuredCall<unknown>['answer']): Anthropic.JSONOutputFormat {
  // The SDK's helper keeps what structured outputs support and moves other constraints (lengths,
  // counts) into descriptions; zod still checks all of them on the answer.
  const { schema } = zodOutputFormat(answer.shownSchema ?? answer.schema);
  return { type: 'json_schema', schema: { ...schema, title: answer.name } };
}

/**
 * The answer in a reply: the JSON text after the last tool activity (web search and its results),
 * or failing that all the text. Structured output puts the answer in text blocks; with web search
 * they may be split around citations.
 */
function answerText(content: readonly Anthropic.ContentBlock[]): string[] {
  const isText = (b: Anthropic.ContentBlock): b is Anthropic.TextBlock => b.type === 'text';
  const quiet = (b: Anthropic.ContentBlock): boolean =>
    isText(b) || b.type === 'thinking' || b.type === 'redacted_thinking';
  let last = -1;
  content.forEach((b, i) => {
    if (!quiet(b)) last = i;
  });
  const after = content
    .slice(last + 1)
    .filter(isText)
    .map((b) => b.text)
    .join('');
  const all = content
    .filter(isText)
    .map((b) => b.text)
    .join('');
  return after === all ? [all] : [after, all];
}

/**
 * Calls the agent's model for a structured answer: the answer's JSON schema is the request's output
 * format (`output_config.format`), so the model answers in JSON text; nothing forces a tool call,
 * which current models refuse. Streams, so that long calls heartbeat. The answer is validated with
 * zod here, inside the activity, before anything reaches workflow history.
 *
 * Prompt caching: the API reads a prompt as tools, then system, then messages. The stable parts are
 * marked as cache breakpoints: the last registry tool, if any (so the tool definitions are cached),
 * and the system prompt (so tools and system prompt are cached together). Both are config,
 * identical for every call of the same agent, so the second and later calls read them from the
 * cache. What changes per call (the question, step results: everything untrusted) stays in the user
 * message, after the breakpoints. A prefix shorter than the model's minimum cacheable length is
 * simply not cached; the request is not refused.
 */
export async function callStructured<T>(call: StructuredCall<T>): Promise<StructuredResult<T>> {
  // A no-op unless the worker set tracing up (workers/telemetry.ts); then a child of the activity's span.
  return trace.getTracer('baton').startActiveSpan(
    `model.call ${call.agent.id}`,
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'baton.agent': call.agent.id,
        'gen_ai.request.model': call.agent.model,
        'baton.answer': call.answer.name,
      },
    },
    async (span) => {
      try {
        const result = await callModel(call, span);
        const { usage } = result;
        span.setAttributes({
          'gen_ai.response.model': result.model,
          // Baton's own accounting, exactly as the task's status and provenance record it.
          'baton.usage.input_tokens': usage.inputTokens,
          'baton.usage.output_tokens': usage.outputTokens,
          'baton.usage.cache_read_input_tokens': usage.cacheReadInputTokens ?? 0,
          'baton.usage.cache_creation_input_tokens': usage.cacheCreationInputTokens ?? 0,
          ...(typeof usage.costUsd === 'number' ? { 'baton.usage.cost_usd': usage.costUsd } : {}),
          'baton.answer.valid': result.parsed.ok,
          ...(result.refusedToolCalls.length
            ? { 'baton.refused_tool_calls': result.refusedToolCalls.length }
            : {}),
        });
        return result;
      } catch (err) {
        const type = err instanceof ApplicationFailure ? err.type : undefined;
        span.setAttribute('error.type', type ?? (err instanceof Error ? err.name : 'unknown'));
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: err instanceof Error ? err.message : String(err),
        });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

/**
 * Refuses a prompt that does not leave the agent's `maxTokens` of its context window for the
 * answer, counted by the API's token-counting endpoint (the same system prompt, message and tools).
 */
async function measure(
  client: Anthropic,
  agent: SnapshotAgent,
  prompt: Pick<Anthropic.MessageCountTokensParams, 'system' | 'messages' | 'tools'>,
): Promise<void> {
  let inputTokens: number;
  try {
    ({ input_tokens: inputTokens } = await client.messages.countTokens({
      model: agent.model,
      system: prompt.system,
      messages: prompt.messages,
      ...(prompt.tools?.length ? { tools: prompt.tools } : {}),
    }));
  } catch (err) {
    throw classifyModelError(err, agent.id);
  }
  const contextTokens = contextTokensOf(agent);
  if (inputTokens + agent.maxTokens <= contextTokens) return;
  throw ApplicationFailure.create({
    message: `agent "${agent.id}": the prompt is ${inputTokens} tokens; with maxTokens ${agent.maxTokens} for the answer it exceeds the context window of ${contextTokens} tokens (contextTokens)`,
    type: FailureTypes.ContextTooLong,
    nonRetryable: true,
    details: [{ inputTokens, contextTokens, maxTokens: agent.maxTokens }],
  });
}

/** How often, at most, a streaming call hands its live words to the heartbeat. */
const LIVE_WORDS_EVERY_MS = 1000;

async function callModel<T>(call: StructuredCall<T>, span: Span): Promise<StructuredResult<T>> {
  const { agent, answer } = call;
  const client = clientFor(call.apiKey, call.baseURL);
  const clientTools = call.clientTools ?? [];
  const tools = [...(call.extraTools ?? []), ...clientTools].map((t, i, all) =>
    i === all.length - 1 ? { ...t, cache_control: CACHE_BREAKPOINT } : t,
  );
  const system: Anthropic.TextBlockParam[] = [
    { type: 'text', text: agent.systemPrompt, cache_control: CACHE_BREAKPOINT },
  ];
  const content: Anthropic.MessageParam['content'] = call.documents?.length
    ? [...call.documents, { type: 'text', text: call.prompt }]
    : call.prompt;
  const messages: Anthropic.MessageParam[] = [{ role: 'user', content }, ...(call.turns ?? [])];
  if (call.measure) await measure(client, agent, { system, messages, tools });
  let message: Anthropic.Message;
  // Tasks started before `streamIdle` existed carry agents without it.
  const idleAfter: TemporalDuration = (agent.timeouts as Partial<typeof agent.timeouts>).streamIdle ?? '1m';
  const idle = new AbortController();
  const idleTimer = setTimeout(() => idle.abort(), durationMs(idleAfter));
  // The heartbeat says the worker is alive, whatever the model is doing: a third of the timeout
  // apart, so a worker that dies is noticed within the agent's heartbeat timeout. Its details are
  // the call's live words (contract/live.ts), sent at most every LIVE_WORDS_EVERY_MS as they come;
  // Temporal throttles what reaches the server.
  let written = '';
  let shownAt = 0;
  const live = () => (written ? liveWords(written, { agent: agent.id, step: call.step }) : undefined);
  const { heartbeatTimeoutMs } = activityInfo();
  const beat = heartbeatTimeoutMs ? setInterval(() => heartbeat(live()), heartbeatTimeoutMs / 3) : undefined;
  try {
    const stream = client.messages.stream(
      {
        model: agent.model,
        max_tokens: agent.maxTokens,
        system,
        messages,
        ...(tools.length ? { tools } : {}),
        ...(call.toolChoice ? { tool_choice: call.toolChoice } : {}),
        output_config: { format: outputFormat(answer) },
      },
      { signal: AbortSignal.any([cancellationSignal(), idle.signal]) },
    );
    // Each streamed event proves the call is alive; one that sends nothing for `streamIdle` is cut.
    stream.on('streamEvent', () => idleTimer.refresh());
    stream.on('text', (delta) => {
      written += delta;
      if (Date.now() - shownAt < LIVE_WORDS_EVERY_MS) return;
      shownAt = Date.now();
      heartbeat(live());
    });
    message = await stream.finalMessage();
  } catch (err) {
    if (idle.signal.aborted)
      throw ApplicationFailure.create({
        message: `agent "${agent.id}": the model's stream sent nothing for ${idleAfter} (timeouts.streamIdle): cut, to be retried`,
        type: FailureTypes.ModelUnavailable,
      });
    throw classifyModelError(err, agent.id);
  } finally {
    clearTimeout(idleTimer);
    clearInterval(beat);
  }
  if (message.stop_reason) span.setAttribute('baton.stop_reason', message.stop_reason);
  if (message.stop_reason === 'max_tokens') {
    // The same call would be cut off again, at full price: not retried.
    throw ApplicationFailure.create({
      message: `agent "${agent.id}": the model's ${answer.name} answer was cut off at max_tokens (${agent.maxTokens}): raise maxTokens for "${agent.id}" in config/agents.yaml`,
      type: FailureTypes.AnswerCutOff,
      nonRetryable: true,
    });
  }
  // Total input is input_tokens + cache reads + cache writes; each is priced at its own rate.
  const tokens: TokenUsage = {
    inputTokens: message.usage.input_tokens,
    outputTokens: message.usage.output_tokens,
    cacheReadInputTokens: message.usage.cache_read_input_tokens ?? 0,
    cacheCreationInputTokens: message.usage.cache_creation_input_tokens ?? 0,
  };
  const usage: TokenUsage = { ...tokens, costUsd: usageCostUsd(tokens, agent.price) };
  const refused = refusedToolCalls(message.content, call.extraTools ?? [], clientTools);
  const retrievals = retrievalsIn(message.content, call.extraTools ?? [], new Date().toISOString());
  for (const r of refused) {
    log.warn('refused a tool call the model made', { agent: agent.id, tool: r.tool, reason: r.reason });
  }
  const calls = message.content.filter((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
  if (clientTools.length && message.stop_reason === 'tool_use' && calls.length) {
    const toolUse = { calls, content: message.content };
    const problems = ['the model asked for tools instead of answering'];
    return {
      parsed: { ok: false, problems },
      usage,
      model: message.model,
      refusedToolCalls: refused,
      toolUse,
    };
  }
  const candidates = answerText(message.content);
  let json: { value: unknown } | undefined;
  for (const text of candidates) {
    try {
      json = { value: JSON.parse(text) as unknown };
      break;
    } catch {
      // the next candidate, or a problem below
    }
  }
  if (!json) {
    const said = candidates.at(-1)!.replace(/\s+/g, ' ').trim().slice(0, 300);
    const problem =
      message.stop_reason === 'refusal'
        ? `the model refused to give its ${answer.name} answer (stop reason refusal)`
        : `the model's ${answer.name} answer is not JSON (stop reason ${message.stop_reason})`;
    return {
      parsed: { ok: false, problems: [`${problem}${said ? `; it said: "${said}"` : ''}`] },
      usage,
      model: message.model,
      refusedToolCalls: refused,
      retrievals,
    };
  }
  const result = answer.schema.safeParse(json.value);
  return {
    parsed: result.success
      ? { ok: true, value: result.data }
      : {
          ok: false,
          problems: result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
        },
    usage,
    model: message.model,
    refusedToolCalls: refused,
    retrievals,
  };
}
