/**
 * The MCP activities (issue 18, docs/tools.md#mcp-servers), on the client of ./mcp-client.ts:
 *
 * - `prepareMcpTools`, before a step's first model turn: lists each server's tools and checks every
 *   tool the step declares against its pin in the task's config snapshot. A tool whose description
 *   or schema changed (a rug pull, a poisoned description) is refused with `ToolPinMismatch`, one
 *   the server no longer lists with `ToolNotDeclared`; tools the server lists but config does not
 *   declare are never offered.
 * - `callMcpTool`, for each call the model asks for: re-lists and re-checks that one tool's pin
 *   (the server may have changed between turns), makes the call with a timeout and the activity's
 *   cancellation, and stores the whole result as text in the artifact store; history gets a
 *   reference and a clipped preview. A call is recorded under its workflow, step and call id: a
 *   retry of a call that completed at the server returns what was stored and calls nothing.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { clip, clipBytes, jsonBytes } from '../contract/bounds';
import { canonicalJson } from '../contract/canonical';
import { FailureTypes } from '../contract/failures';
import {
  MAX_TOOL_ARGUMENT_BYTES,
  MAX_TOOL_DESCRIPTION_CHARS,
  MAX_TOOL_RESULT_BYTES,
  MAX_TOOL_RESULT_PREVIEW_BYTES,
  MAX_TOOL_SCHEMA_BYTES,
  McpFailureTypes,
  type McpActivities,
  type McpToolCallInput,
  type McpToolDefinition,
  type PreparedTool,
  type PrepareMcpToolsInput,
  type PrepareToolsResult,
  type ToolCallResult,
} from '../contract/mcp';
import { safeText } from '../contract/text';
import { putArtifact, sha256 } from './artifacts';
import { checkPins, nonRetryable, pinnedListings, withMcpServer } from './mcp-client';
import type { ObjectStore } from './store';

/** How often an MCP activity heartbeats while it waits on a server. */
const HEARTBEAT_EVERY_MS = 1000;

const INVALID_PARAMS: number = ErrorCode.InvalidParams;

/** A declared tool as the model is offered it, refused when its schema is too large to carry. */
function prepared(id: string, tool: McpToolDefinition): PreparedTool {
  const bytes = jsonBytes(tool.inputSchema);
  if (bytes > MAX_TOOL_SCHEMA_BYTES)
    throw nonRetryable(
      `MCP server "${id}" tool "${tool.name}": its input schema is ${bytes} bytes of JSON, over the ${MAX_TOOL_SCHEMA_BYTES} a tool may have`,
      McpFailureTypes.McpProtocolError,
    );
  return {
    server: id,
    tool: tool.name,
    modelName: `${id}__${tool.name}`,
    description: clip(safeText(tool.description ?? '', { multiline: true }), MAX_TOOL_DESCRIPTION_CHARS),
    inputSchema: tool.inputSchema,
  };
}

/**
 * A result's content blocks as text: text blocks as they are, embedded text resources with their
 * URI; images, audio, binary resources and links described, never decoded or followed.
 */
export function resultText(result: CallToolResult): string {
  const parts = result.content.map((block) => {
    switch (block.type) {
      case 'text':
        return block.text;
      case 'image':
      case 'audio':
        return `[${block.type} (${block.mimeType}), ${Math.floor((block.data.length * 3) / 4)} bytes: not shown]`;
      case 'resource_link':
        return `[resource link: ${block.name} <${block.uri}>]`;
      case 'resource':
        return 'text' in block.resource && typeof block.resource.text === 'string'
          ? `[resource <${block.resource.uri}>]\n${block.resource.text}`
          : `[resource <${block.resource.uri}>${block.resource.mimeType ? ` (${block.resource.mimeType})` : ''}: binary, not shown]`;
      default:
        return `[content of type "${String((block as { type?: unknown }).type).slice(0, 40)}": not shown]`;
    }
  });
  if (!parts.length && result.structuredContent !== undefined)
    parts.push(JSON.stringify(result.structuredContent));
  return parts.join('\n\n');
}

const utf8 = new TextEncoder();

/** Text cut to at most `max` bytes of UTF-8 on a character boundary, with a note saying so. */
function clipStored(text: string): string {
  const total = Buffer.byteLength(text, 'utf8');
  if (total <= MAX_TOOL_RESULT_BYTES) return text;
  const { read } = utf8.encodeInto(text, new Uint8Array(MAX_TOOL_RESULT_BYTES));
  return `${text.slice(0, read)}\n[cut: the tool returned ${total} bytes; the first ${MAX_TOOL_RESULT_BYTES} are kept]`;
}

const CALL_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** What a completed call left in the store, read back by a retry. */
const CallRecordSchema = z
  .object({
    callId: z.string(),
    isError: z.boolean(),
    result: z.object({ id: z.string(), bytes: z.number() }).strict(),
    preview: z.string(),
  })
  .strict();

const invalid = (message: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(message, FailureTypes.InvalidInput);

/** Runs `work` with the activity's cancellation, heartbeating while it waits. */
async function heartbeating<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const context = Context.current();
  const beat = setInterval(() => context.heartbeat(), HEARTBEAT_EVERY_MS);
  try {
    return await work(context.cancellationSignal);
  } finally {
    clearInterval(beat);
  }
}

export interface McpDeps {
  /** The artifact store: results, and the record of each completed call. */
  store: ObjectStore;
  /** Where tokens are read; the worker's environment. */
  env: NodeJS.ProcessEnv;
}

export function mcpActivities({ store, env }: McpDeps): McpActivities {
  const seen = pinnedListings();

  return {
    async prepareMcpTools(input: PrepareMcpToolsInput): Promise<PrepareToolsResult> {
      const byServer = new Map<string, string[]>();
      for (const { server, tool } of input.tools) {
        const names = byServer.get(server) ?? [];
        if (!names.includes(tool)) names.push(tool);
        byServer.set(server, names);
      }
      const perServer = await heartbeating((signal) =>
        Promise.all(
          [...byServer].map(async ([id, names]) => {
            const servers = input.servers ?? {};
            const server = Object.hasOwn(servers, id) ? servers[id] : undefined;
            if (!server)
              throw nonRetryable(
                `MCP server "${id}" is not declared in the task's config`,
                McpFailureTypes.ToolNotDeclared,
                [{ server: id, tool: names[0] }],
              );
            const listed = await withMcpServer(id, server, { env, signal }, (session) => session.list());
            const checked = checkPins(id, server, names, listed, seen);
            return names.map((name) => prepared(id, checked.get(name)!));
          }),
        ),
      );
      return { tools: perServer.flat() };
    },

    async callMcpTool(input: McpToolCallInput): Promise<ToolCallResult> {
      const { callId, stepId, declaration } = input;
      if (typeof callId !== 'string' || !CALL_ID.test(callId))
        throw invalid('an MCP call id must be 1 to 128 letters, digits, "_" or "-"');
      if (typeof stepId !== 'string' || stepId.length < 1 || stepId.length > 200)
        throw invalid('an MCP call must name its step (1 to 200 characters)');
      const args = input.arguments;
      if (typeof args !== 'object' || args === null || Array.isArray(args))
        throw invalid(`MCP call ${callId}: its arguments must be a JSON object`);
      const bytes = jsonBytes(args);
      if (bytes > MAX_TOOL_ARGUMENT_BYTES)
        throw invalid(
          `MCP call ${callId}: its arguments are ${bytes} bytes of JSON, over the ${MAX_TOOL_ARGUMENT_BYTES} Baton carries`,
        );
      if (!(declaration as McpToolCallInput['declaration'] | undefined))
        throw nonRetryable(
          `MCP server "${input.server}" is not declared in the task's config`,
          McpFailureTypes.ToolNotDeclared,
          [{ server: input.server, tool: input.tool }],
        );
      const workflowId = Context.current().info.workflowExecution?.workflowId;
      if (!workflowId) throw invalid('MCP tools are called only by a task (this activity has no workflow)');

      // A call that completed already (an earlier attempt whose completion was lost) is not made again.
      const key = `mcp-calls/${sha256(canonicalJson([workflowId, stepId, callId]))}.json`;
      const done = async (): Promise<ToolCallResult | undefined> => {
        const body = await store.get(key);
        return body === undefined ? undefined : CallRecordSchema.parse(JSON.parse(body.toString('utf8')));
      };
      const earlier = await done();
      if (earlier) return earlier;

      const text = await heartbeating((signal) =>
        withMcpServer(input.server, declaration, { env, signal }, async (session) => {
          checkPins(input.server, declaration, [input.tool], await session.list(), seen);
          try {
            const result = await session.call(input.tool, args);
            return { isError: result.isError === true, text: resultText(result) };
          } catch (err) {
            // Arguments the tool's schema refuses, a result not in its output schema: the model is
            // told, as a failed call, and may try again.
            if (err instanceof McpError && err.code === INVALID_PARAMS)
              return { isError: true, text: `The call failed: ${err.message}` };
            throw err;
          }
        }),
      );
      const stored = clipStored(text.text);
      const record: ToolCallResult = {
        callId,
        isError: text.isError,
        result: await putArtifact(store, stored),
        preview: clipBytes(safeText(stored), MAX_TOOL_RESULT_PREVIEW_BYTES),
      };
      if (await store.create(key, Buffer.from(JSON.stringify(record), 'utf8'))) return record;
      // Another attempt recorded the call first: its record stands.
      return (await done()) ?? record;
    },
  };
}
