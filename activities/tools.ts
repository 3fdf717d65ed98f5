/**
 * The fixed registry of tools an agent may be given, by the name config uses.
 *
 * Only tools that fetch or look things up belong here. There is deliberately no entry for the
 * API's code-execution, bash, text-editor or computer-use tools, nor any tool that runs code or
 * shell commands on a worker: the orchestrator never writes or runs code. Config can name only
 * keys of this record (the schema's `TOOL_NAMES`), so a model cannot reach anything else.
 */
import type Anthropic from '@anthropic-ai/sdk';
import type { ToolName } from '../config/schema';

export const TOOL_REGISTRY: Record<ToolName, Anthropic.ToolUnion> = {
  /** Anthropic's server-side web search: runs at the API, never on a Baton worker. */
  web_search: { type: 'web_search_20250305', name: 'web_search', max_uses: 5 },
};
