/**
 * The fixed registry of tools an agent may be given, by the name config uses, and the definitions
 * sent to the API with an agent's settings from config applied (docs/tools.md).
 *
 * Only tools that fetch or look things up belong here, and both run at the API (server tools), never
 * on a Baton worker. There is deliberately no entry for the API's code-execution, bash, text-editor
 * or computer-use tools, nor any tool that runs code or shell commands on a worker: the
 * orchestrator never writes or runs code. Config can name only keys of this record (the schema's
 * `TOOL_NAMES`), so a model cannot reach anything else.
 */
import type Anthropic from '@anthropic-ai/sdk';
import { serverTools, type AgentTool, type AgentToolEntry, type ToolName } from '../config/schema';

/** Each tool as sent when config names it without settings. */
export const TOOL_REGISTRY = {
  /** Anthropic's server-side web search. */
  web_search: { type: 'web_search_20250305', name: 'web_search', max_uses: 5 },
  /**
   * Anthropic's server-side web fetch: reads whole pages (and PDFs) at URLs already in the
   * conversation; cited, and capped at 20,000 tokens a page by default.
   */
  web_fetch: {
    type: 'web_fetch_20250910',
    name: 'web_fetch',
    max_uses: 5,
    max_content_tokens: 20_000,
    citations: { enabled: true },
  },
} satisfies Record<ToolName, Anthropic.ToolUnion>;

/** The definition sent to the API for one tool an agent is given, its config settings applied. */
export function toolDefinition(tool: AgentTool): Anthropic.ToolUnion {
  if (typeof tool === 'string') return TOOL_REGISTRY[tool];
  const domains = {
    ...(tool.allowedDomains ? { allowed_domains: tool.allowedDomains } : {}),
    ...(tool.blockedDomains ? { blocked_domains: tool.blockedDomains } : {}),
  };
  if (tool.name === 'web_search')
    return {
      ...TOOL_REGISTRY.web_search,
      ...domains,
      max_uses: tool.maxUses ?? TOOL_REGISTRY.web_search.max_uses,
    };
  return {
    ...TOOL_REGISTRY.web_fetch,
    ...domains,
    max_uses: tool.maxUses ?? TOOL_REGISTRY.web_fetch.max_uses,
    max_content_tokens: tool.maxContentTokens ?? TOOL_REGISTRY.web_fetch.max_content_tokens,
  };
}

/**
 * The definitions of every server tool an agent is given, in config's order. Its MCP tools are not
 * among them: the workflow's tool loop offers those, once checked against their pins (activities/mcp.ts).
 */
export const toolsFor = (tools: readonly AgentToolEntry[]): Anthropic.ToolUnion[] =>
  serverTools(tools).map(toolDefinition);
