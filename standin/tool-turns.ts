/**
 * Client tool use in the stand-in (issue 18): custom tools in `tools`, and `tool_use` /
 * `tool_result` turns in `messages`, checked as the Messages API checks them, each refusal a 400
 * `invalid_request_error` in the API's words (docs/testing.md, "Client tool use"). And what tests
 * script a tool loop with: {@link toolCalls}, {@link turnOf}, {@link toolResults}.
 *
 * Rules, and where the documentation says them:
 *   - a custom tool's name matches `^[a-zA-Z0-9_-]{1,128}$`, and its `input_schema` is a JSON
 *     Schema object (`type: "object"`): "Define tools" (platform.claude.com/docs/en/agents-and-tools/tool-use/define-tools);
 *   - tool names are unique in a request (server tools included);
 *   - every `tool_use` of an assistant message is answered by a `tool_result` with its id in the
 *     very next (user) message, and those `tool_result` blocks come first there; a `tool_result`
 *     answers a `tool_use` of the message just before it: "Handle tool calls"
 *     (platform.claude.com/docs/en/agents-and-tools/tool-use/handle-tool-calls);
 *   - `tool_use` ids are unique and match `^[a-zA-Z0-9_-]+$`; a request carrying tool blocks
 *     defines tools; messages and text blocks are not empty: the API's own 400s (wording as it
 *     sends them).
 */
import type { MessageParam, ReplyBlock, StandInReply, StandInRequest } from './server';

/** A custom tool's name, as the API accepts it. */
const TOOL_NAME = /^[a-zA-Z0-9_-]{1,128}$/;
/** A `tool_use` id, as the API accepts it. */
const TOOL_USE_ID = /^[a-zA-Z0-9_-]+$/;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Why the API would refuse custom tool `i`, or undefined. */
export function customToolProblem(tool: Record<string, unknown>, i: number): string | undefined {
  const at = `tools.${i}.custom`;
  if (typeof tool.name !== 'string' || !TOOL_NAME.test(tool.name))
    return `${at}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`;
  if (!isRecord(tool.input_schema)) return `${at}.input_schema: Field required`;
  if (tool.input_schema.type !== 'object') return `${at}.input_schema.type: Input should be 'object'`;
  return undefined;
}

/** Why the API would refuse the request's tool names: the same name twice. */
export function toolNamesProblem(names: readonly string[]): string | undefined {
  return new Set(names).size === names.length ? undefined : 'tools: Tool names must be unique.';
}

const blocksOf = (m: MessageParam) => (typeof m.content === 'string' ? [] : m.content);

/**
 * Why the API would refuse the conversation's tool turns (and empty text blocks), or undefined.
 * `hasTools`: whether the request defines any tool.
 */
export function toolTurnsProblem(messages: readonly MessageParam[], hasTools: boolean): string | undefined {
  const seen = new Set<string>();
  for (const [i, m] of messages.entries()) {
    const finalReply = m.role === 'assistant' && i === messages.length - 1;
    if (m.content.length === 0 && !finalReply)
      return `messages.${i}: all messages must have non-empty content except for the optional final assistant message`;
    for (const [j, b] of blocksOf(m).entries()) {
      if (b.type === 'text' && (typeof b.text !== 'string' || b.text === ''))
        return 'messages: text content blocks must be non-empty';
      if ((b.type === 'tool_use' || b.type === 'tool_result') && !hasTools)
        return 'Requests which include `tool_use` or `tool_result` blocks must define tools.';
      if (b.type !== 'tool_use') continue;
      if (typeof b.id !== 'string' || !TOOL_USE_ID.test(b.id))
        return `messages.${i}.content.${j}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'`;
      if (seen.has(b.id)) return `messages.${i}.content.${j}: \`tool_use\` ids must be unique`;
      seen.add(b.id);
    }
  }
  for (const [i, m] of messages.entries()) {
    const asked = m.role === 'assistant' ? blocksOf(m).filter((b) => b.type === 'tool_use') : [];
    const next = messages[i + 1];
    const answers = next ? blocksOf(next) : [];
    const leading = answers.findIndex((b) => b.type !== 'tool_result');
    const first = leading < 0 ? answers : answers.slice(0, leading);
    // A trailing tool use is what a client answers next: only one followed by a message must be answered.
    if (asked.length && next) {
      if (first.length < asked.length && answers.some((b) => b.type === 'tool_result'))
        return `messages.${i + 1}: Did not find ${asked.length} \`tool_result\` block(s) at the beginning of this message. Messages following \`tool_use\` blocks must begin with a matching number of \`tool_result\` blocks.`;
      const answered = new Set(first.map((b) => b.tool_use_id));
      const missing = asked.map((b) => String(b.id)).filter((id) => !answered.has(id));
      if (missing.length)
        return `messages.${i}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`;
    }
    const previous = i > 0 ? blocksOf(messages[i - 1]!) : [];
    const ids = new Set(previous.filter((b) => b.type === 'tool_use').map((b) => b.id));
    for (const [j, b] of blocksOf(m).entries()) {
      if (b.type === 'tool_result' && (m.role !== 'user' || !ids.has(b.tool_use_id)))
        return `messages.${i}.content.${j}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(b.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Scripting a tool loop (tests)

/** A reply that calls client tools, in order: what a script answers a model turn with. */
export const toolCalls = (...calls: { name: string; input: Record<string, unknown> }[]): StandInReply => ({
  kind: 'blocks',
  blocks: calls.map((c): ReplyBlock => ({ type: 'tool_use', name: c.name, input: c.input })),
});

/** Which model turn of a tool loop a request is: 1 plus the replies it carries. */
export const turnOf = (req: StandInRequest): number =>
  1 + req.body.messages.filter((m) => m.role === 'assistant').length;

/** The tool results a request carries, every turn's, in order: each call's id, its text and whether it failed. */
export function toolResults(req: StandInRequest): { id: string; text: string; isError: boolean }[] {
  return req.body.messages.flatMap((m) =>
    blocksOf(m).flatMap((b) => {
      if (b.type !== 'tool_result') return [];
      const content = b.content;
      const text =
        typeof content === 'string'
          ? content
          : Array.isArray(content)
            ? content.map((c) => (isRecord(c) && typeof c.text === 'string' ? c.text : '')).join('\n')
            : '';
      return [{ id: String(b.tool_use_id), text, isError: b.is_error === true }];
    }),
  );
}
