/**
 * The contract of MCP tools (issue 18, docs/tools.md): how a declared tool is pinned, and what the
 * workflow's tool loop sends to and gets back from the MCP activities. Pure code: workflows import
 * it for types and the pin; activities/mcp.ts implements the calls with the official MCP SDK.
 */
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
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

/** Failure types of the MCP activities, each non-retryable: the server changed or refused under review. */
export const McpFailureTypes = {
  /** A declared tool's listing no longer matches its pin (description or schema changed). */
  ToolPinMismatch: 'ToolPinMismatch',
  /** The server does not list a declared tool, or the model asked for one not declared. */
  ToolNotDeclared: 'ToolNotDeclared',
} as const;
