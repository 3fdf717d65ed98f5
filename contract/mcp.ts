/**
 * The contract of MCP tools (issue 18, docs/tools.md): how a declared tool is pinned, and what the
 * workflow's tool loop sends to and gets back from the MCP activities. Pure code: workflows import
 * it for types and the pin; activities/mcp.ts implements the calls with the official MCP SDK.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import type { McpServer, McpServers } from '../config/schema';
import { canonicalJson } from './canonical';
import type { ArtifactRef } from './messages';

/** A tool as an MCP server lists it: what the pin covers. */
export interface McpToolDefinition {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
}

/**
 * The pin of a tool: sha256 (hex) of the canonical JSON of its name, description and input schema.
 * A server whose listing no longer hashes to the pin in config has changed the tool under review.
 */
export const pinOf = (tool: McpToolDefinition): string =>
  bytesToHex(
    sha256(
      utf8ToBytes(
        canonicalJson({
          name: tool.name,
          description: tool.description ?? '',
          inputSchema: tool.inputSchema,
        }),
      ),
    ),
  );

/** One declared tool of one declared server, as an agent is given it. */
export interface McpToolRef {
  /** The server's id in config. */
  server: string;
  /** The tool's name on that server. */
  tool: string;
}

/** Most bytes of a tool call's arguments (JSON) the workflow carries: a larger call is refused. */
export const MAX_TOOL_ARGUMENT_BYTES = 16 * 1024;
/** Most bytes of a tool result's text kept in a payload; the whole result goes to the store. */
export const MAX_TOOL_RESULT_PREVIEW_BYTES = 2 * 1024;
/** Most bytes of a tool result's text the store keeps: past it, the text is cut, saying so. */
export const MAX_TOOL_RESULT_BYTES = 256 * 1024;
/** Most characters of a tool's description the model is offered (the pin covers the whole of it). */
export const MAX_TOOL_DESCRIPTION_CHARS = 4000;
/** Most bytes of a tool's input schema (JSON): a tool with a larger one is refused, never cut. */
export const MAX_TOOL_SCHEMA_BYTES = 16 * 1024;
/**
 * How long one request to an MCP server (connecting, listing, one call) may take before the activity
 * gives up (retryable). The MCP activities' startToClose must leave room for a few of them.
 */
export const MCP_REQUEST_TIMEOUT_MS = 60_000;

/** The tools of one step, checked against their pins before the step's first model turn. */
export interface PrepareToolsInput {
  tools: McpToolRef[];
}
export interface PreparedTool extends McpToolRef {
  /** What the model is offered: `<server>__<tool>`, unique within the step. */
  modelName: string;
  description: string;
  inputSchema: Record<string, unknown>;
}
export interface PrepareToolsResult {
  tools: PreparedTool[];
}

/** One tool call the model asked for. */
export interface ToolCallInput extends McpToolRef {
  /** The model's `tool_use` id, answered by this call's `tool_result`. */
  callId: string;
  /** The workflow id and step, for the stored result's key. */
  stepId: string;
  arguments: Record<string, unknown>;
}
export interface ToolCallResult {
  callId: string;
  /** Whether the server reported the call as failed (the model is told so, the step goes on). */
  isError: boolean;
  /** The whole result, as text, in the artifact store. */
  result: ArtifactRef;
  /** The start of the result, for status and the Web UI. */
  preview: string;
}

/**
 * Failure types of the MCP activities. Non-retryable unless said: the server changed or refused
 * under review, or answered outside the protocol.
 */
export const McpFailureTypes = {
  /**
   * A declared tool's listing no longer matches its pin (description or schema changed). Details:
   * `[{ server, tool, expected, actual, changed }]`, `changed` naming `description` and/or
   * `inputSchema` when the worker saw the pinned listing earlier, else undefined.
   */
  ToolPinMismatch: 'ToolPinMismatch',
  /** The server does not list a declared tool, or the model asked for one not declared. Details: `[{ server, tool }]`. */
  ToolNotDeclared: 'ToolNotDeclared',
  /** Retryable: the server cannot be reached, answered 5xx or 429, or did not answer in time. */
  McpServerUnavailable: 'McpServerUnavailable',
  /** The server refused the worker's credentials (401, 403), or the token's variable is not set. */
  McpAuthFailed: 'McpAuthFailed',
  /** The server answered outside the protocol or out of bounds (a malformed listing or result, a tool too large). */
  McpProtocolError: 'McpProtocolError',
} as const;

/** `prepareMcpTools`: the step's tools, and the declarations of their servers from the task's config snapshot. */
export type PrepareMcpToolsInput = PrepareToolsInput & { servers: McpServers };
/** `callMcpTool`: one call, and the declaration of its server (`server`) from the task's config snapshot. */
export type McpToolCallInput = ToolCallInput & { declaration: McpServer };

/** The MCP activities (activities/mcp.ts), which the workflow's tool loop schedules. */
export interface McpActivities {
  /**
   * Lists each server's tools and checks every declared tool of the step against its pin: refuses
   * the step (ToolPinMismatch, ToolNotDeclared) when one changed or is gone; offers only declared tools.
   */
  prepareMcpTools(input: PrepareMcpToolsInput): Promise<PrepareToolsResult>;
  /**
   * Makes one call: re-lists and re-checks that tool's pin first, stores the whole result as text,
   * returns a preview. Idempotent by workflow, step and call id: a retry of a call that completed at
   * the server returns the stored result and does not call the tool again.
   */
  callMcpTool(input: McpToolCallInput): Promise<ToolCallResult>;
}
