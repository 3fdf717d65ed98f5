/**
 * The durable tool loop's contract (issue 18, docs/tools.md "The tool loop"): what the workflow
 * (workflows/tool-loop.ts) gives the model-turn activity (activities/tool-turn.ts) and gets back.
 *
 * The workflow carries the conversation as references and ids only: each model reply and each
 * tool result lives in the artifact store, and the activity rebuilds the messages from them. Tool
 * results reach the model only as `tool_result` blocks, never in its system prompt.
 */
import type { Refusals, StepInput, StepResult } from './activities';
import type { McpToolRef, PreparedTool } from './mcp';
import type { ArtifactRef, Source, TokenUsage } from './messages';

/** Model turns of a step with client tools when its agent's config says none (`maxToolTurns`). */
export const DEFAULT_MAX_TOOL_TURNS = 8;
/** The most `maxToolTurns` config may give an agent. */
export const MAX_TOOL_TURNS = 50;
/** Most characters of one tool result a model turn is given; the rest is cut, saying so. */
export const MAX_TOOL_RESULT_CHARS = 50_000;

/** The MCP tools among an agent's `tools` (config: `{ mcp: '<server>', tool: '<name>' }`), in order. */
export function mcpToolsOf(tools: readonly unknown[]): McpToolRef[] {
  return tools.flatMap((t) => {
    if (typeof t !== 'object' || t === null) return [];
    const { mcp, tool } = t as { mcp?: unknown; tool?: unknown };
    return typeof mcp === 'string' && typeof tool === 'string' ? [{ server: mcp, tool }] : [];
  });
}

/** One tool call the model asked for: a declared tool with its arguments, or one Baton refuses. */
export type AskedCall =
  | (McpToolRef & { callId: string; arguments: Record<string, unknown> })
  | { callId: string; refused: string; tool: string };

/** How one call was answered, as the next turn gives it to the model. */
export interface CallAnswer {
  callId: string;
  isError: boolean;
  /** The tool's result, in the artifact store (a call that ran). */
  result?: ArtifactRef;
  /** Baton's own words instead (a call refused by config or by a person). */
  note?: string;
}

/** One finished turn: the model's reply (its content blocks, JSON, in the store) and the answers to its calls. */
export interface ToolLoopTurn {
  assistant: ArtifactRef;
  answers: CallAnswer[];
}

/** Input of the model-turn activity: the step, and the conversation so far by reference. */
export interface ToolTurnInput extends StepInput {
  /** The step's tools as prepared (first turn); later turns give {@link toolsRef}. */
  tools?: PreparedTool[];
  /** The prepared tools as the first turn stored them. */
  toolsRef?: ArtifactRef;
  turns: ToolLoopTurn[];
  /** The last turn the loop allows (turns or token budget): the model must answer, tools are not used. */
  last: boolean;
}

interface TurnCommon extends Refusals {
  usage: TokenUsage;
  model: string;
  /** The prepared tools in the store, for the next turn. */
  toolsRef: ArtifactRef;
}

/** What one model turn gave: tool calls to make, or the step's findings. */
export type ToolTurnResult = TurnCommon &
  (
    | { kind: 'calls'; assistant: ArtifactRef; calls: AskedCall[] }
    | ({
        kind: 'answer';
        summary: string;
        sources: Source[];
        sourcesRef: ArtifactRef;
        result: ArtifactRef;
      } & Pick<StepResult, 'retrievedRef' | 'retrieved'>)
  );

export interface ToolLoopActivities {
  /**
   * One model turn of a step with client tools: the conversation rebuilt from the store, the
   * model's reply stored; its tool calls returned for the workflow to make, or its findings.
   */
  toolTurn(input: ToolTurnInput): Promise<ToolTurnResult>;
}
