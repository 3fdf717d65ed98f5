/**
 * Every model call goes through here: one Anthropic client per worker, streaming with heartbeats,
 * structured output through one forced tool, and the one place where SDK errors become Temporal
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
import { cancellationSignal, heartbeat, log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { AgentConfig } from '../config/schema';
import type { TokenUsage } from '../workflows/messages';

/** Failure types a workflow or a retry policy can name. */
export const FailureTypes = {
  /** The request is wrong (400, 404, 413, 422): fix config or input. */
  ModelRequestInvalid: 'ModelRequestInvalid',
  /** The key is missing, wrong or lacks permission (401, 403). */
  ModelAuthFailed: 'ModelAuthFailed',
  /** Rate limit, overload, 5xx, connection trouble: retried with backoff. */
  ModelUnavailable: 'ModelUnavailable',
  /** The model answered, but not in the required structure. */
  ModelOutputInvalid: 'ModelOutputInvalid',
} as const;

const NON_RETRYABLE_HINTS: Record<number, string> = {
  400: "the request was refused as invalid; check the agent's model name and max tokens in config/agents.yaml",
  401: "authentication failed; set a valid ANTHROPIC_API_KEY in the worker's environment",
  403: "the API key lacks permission for this model or feature; check the key's workspace and the model name",
  404: 'not found; check the model name in config/agents.yaml and ANTHROPIC_BASE_URL',
  413: 'the request is too large; lower the question or step context size',
  422: "the request could not be processed; check the agent's config",
};

/** Parses `retry-after` (seconds or HTTP date) into milliseconds, if present and sane. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  const value = headers?.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.min(Number(value) * 1000, 10 * 60_000);
  // Only the IMF-fixdate form HTTP uses: Date.parse alone accepts garbage such as "-5".
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(value)) return undefined;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, Math.min(date - now, 10 * 60_000));
}

/** Maps anything a model call threw to what Temporal should do with it. */
export function classifyModelError(err: unknown, agentId: string): unknown {
  if (err instanceof Anthropic.APIUserAbortError) return err; // cancellation: let Temporal see it as such
  if (err instanceof Anthropic.APIError && typeof err.status === 'number') {
    const status: number = err.status;
    const hint = NON_RETRYABLE_HINTS[status];
    // The API's own message reads better than the SDK's (which repeats the status and raw body).
    const apiMessage = (err.error as { error?: { message?: unknown } } | undefined)?.error?.message;
    const detail = `agent "${agentId}": model API answered ${status}: ${typeof apiMessage === 'string' ? apiMessage : err.message}`;
    if (hint) {
      const type =
        status === 401 || status === 403 ? FailureTypes.ModelAuthFailed : FailureTypes.ModelRequestInvalid;
      return ApplicationFailure.create({ message: `${detail} (${hint})`, type, nonRetryable: true });
    }
    return ApplicationFailure.create({
      message: detail,
      type: FailureTypes.ModelUnavailable,
      nextRetryDelay: retryAfterMs(err.headers as Headers | undefined),
    });
  }
  if (err instanceof Anthropic.APIConnectionError) {
    return ApplicationFailure.create({
      message: `agent "${agentId}": cannot reach the model API: ${err.message}`,
      type: FailureTypes.ModelUnavailable,
    });
  }
  if (err instanceof Anthropic.AnthropicError) {
    // E.g. a stream cut mid-response ("terminated"): transient, so retried like a lost connection.
    return ApplicationFailure.create({
      message: `agent "${agentId}": the model call broke off: ${err.message}`,
      type: FailureTypes.ModelUnavailable,
    });
  }
  return err;
}

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

export interface StructuredCall<T> {
  agent: AgentConfig;
  /** The user message: Baton's instructions, with untrusted material inside delimiters. */
  prompt: string;
  tool: { name: string; description: string; schema: z.ZodType<T>; jsonSchema?: object };
  /** Tools from the registry that the agent may use before it answers (see `tools.ts`). */
  extraTools?: Anthropic.ToolUnion[];
  apiKey: string | undefined;
  baseURL: string | undefined;
}

export interface StructuredResult<T> {
  /** The parsed tool input, or the zod problems when it did not match. */
  parsed: { ok: true; value: T } | { ok: false; problems: string[] };
  usage: TokenUsage;
  model: string;
  /** Tool calls the model made that were not offered to it: refused, never executed. */
  refusedToolCalls: RefusedToolCall[];
}

/** A tool call Baton refused. Only the (clipped) name is kept: the input may carry anything. */
export interface RefusedToolCall {
  tool: string;
  reason: string;
}

/**
 * The tool calls in a reply that Baton refuses: a client tool other than the answer tool (Baton
 * executes no client tools at all; the registry holds only server tools), or a server tool that
 * was not offered. Nothing here is ever executed: the caller only reads the answer tool's input.
 */
export function refusedToolCalls(
  content: readonly Anthropic.ContentBlock[],
  answerTool: string,
  offered: readonly Anthropic.ToolUnion[],
): RefusedToolCall[] {
  const offeredNames = new Set(offered.flatMap((t) => ('name' in t ? [t.name] : [])));
  const clip = (name: string): string => name.replace(/[^\w.-]/g, '?').slice(0, 64);
  const refused: RefusedToolCall[] = [];
  for (const block of content) {
    if (block.type === 'tool_use' && block.name !== answerTool) {
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

/**
 * Calls the agent's model, forcing one tool whose input is the structured answer, streaming so
 * that long calls heartbeat. The answer is validated with zod here, inside the activity, before
 * anything reaches workflow history.
 */
export async function callStructured<T>(call: StructuredCall<T>): Promise<StructuredResult<T>> {
  const { agent, tool } = call;
  const client = clientFor(call.apiKey, call.baseURL);
  const inputSchema = call.tool.jsonSchema ?? z.toJSONSchema(tool.schema, { io: 'input' });
  let message: Anthropic.Message;
  try {
    const stream = client.messages.stream(
      {
        model: agent.model,
        max_tokens: agent.maxTokens,
        system: agent.systemPrompt,
        messages: [{ role: 'user', content: call.prompt }],
        tools: [
          ...(call.extraTools ?? []),
          {
            name: tool.name,
            description: tool.description,
            input_schema: inputSchema as Anthropic.Tool.InputSchema,
          },
        ],
        // With no other tool the answer tool is forced; with registry tools the model may use
        // them first but must still end with a tool call, and only the answer tool is read.
        tool_choice: call.extraTools?.length ? { type: 'any' } : { type: 'tool', name: tool.name },
      },
      { signal: cancellationSignal() },
    );
    // Each streamed event proves the call is alive. The worker throttles heartbeats, so one per
    // event is cheap; a call that never streams stops heartbeating and times out.
    stream.on('streamEvent', () => heartbeat());
    message = await stream.finalMessage();
  } catch (err) {
    throw classifyModelError(err, agent.id);
  }
  const usage: TokenUsage = {
    inputTokens: message.usage.input_tokens,
    outputTokens: message.usage.output_tokens,
  };
  const refused = refusedToolCalls(message.content, tool.name, call.extraTools ?? []);
  for (const r of refused) {
    log.warn('refused a tool call the model made', { agent: agent.id, tool: r.tool, reason: r.reason });
  }
  const block = message.content.find(
    (b): b is Anthropic.ToolUseBlock => b.type === 'tool_use' && b.name === tool.name,
  );
  if (!block) {
    const text = message.content
      .filter((b): b is Anthropic.TextBlock => b.type === 'text')
      .map((b) => b.text)
      .join(' ')
      .slice(0, 300);
    return {
      parsed: {
        ok: false,
        problems: [
          `the model did not call ${tool.name} (stop reason ${message.stop_reason}${text ? `; it said: "${text}"` : ''})`,
        ],
      },
      usage,
      model: message.model,
      refusedToolCalls: refused,
    };
  }
  const result = tool.schema.safeParse(block.input);
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
  };
}
