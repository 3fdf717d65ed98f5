/**
 * `mcpServers` in `agents.yaml`: the MCP servers agents may call (docs/tools.md#mcp-servers), each
 * with its URL, the name of the environment variable holding its bearer token, and the tools agents
 * may call there, each pinned by the sha256 of its name, description and input schema
 * (contract/mcp.ts `pinOf`). An agent names an MCP tool in its `tools` as `{ mcp: <server>, tool:
 * <name> }`. Pure code (no `URL`: workflow code imports this module).
 */
import { z } from 'zod';
import { IdSchema, type Finding } from './common';

/** Most MCP servers one config declares, and tools one server declares. */
export const MAX_MCP_SERVERS = 20;
export const MAX_MCP_TOOLS_PER_SERVER = 100;

/**
 * An MCP tool's name as config declares it: what the Messages API accepts in a tool name (letters,
 * digits, `_`, `-`), at most 64, so that `<server>__<tool>` is a name the model can be offered.
 */
export const McpToolNameSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9_-]{1,64}$/,
    'must be an MCP tool name of letters, digits, "_" and "-" (at most 64): the model is offered it as <server>__<tool>',
  );

/** An MCP server's id in config: an id as everywhere in config (no `_`, so `<server>__<tool>` splits one way). */
export const McpServerIdSchema = IdSchema;

const isLoopback = (host: string): boolean =>
  host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);

/**
 * The server's Streamable HTTP endpoint: `https://`, or `http://` to this machine only (localhost,
 * 127.x.x.x, [::1]). No credentials, query or fragment in it: a secret there would be in git.
 */
export const McpUrlSchema = z
  .string()
  .max(2048, 'must be at most 2048 characters')
  .superRefine((url, ctx) => {
    const issue = (message: string): void => ctx.addIssue({ code: 'custom', message });
    const match = /^(https?):\/\/([^/?#\s]+)(\/[^?#\s]*)?([?#].*)?$/.exec(url);
    if (!match) return issue('must be an http:// or https:// URL such as "https://mcp.example.com/mcp"');
    const [, scheme, authority, , rest] = match;
    if (authority!.includes('@'))
      return issue(
        'must not carry credentials (user:password@): put the token in an environment variable and name it with tokenEnv',
      );
    if (rest)
      return issue(
        'must not have a query or fragment (a secret there would be in git): put the token in an environment variable and name it with tokenEnv',
      );
    const host = (/^\[([^\]]*)\](?::\d+)?$/.exec(authority!)?.[1] ?? authority!.replace(/:\d*$/, ''))
      .toLowerCase()
      .replace(/\.$/, '');
    if (scheme === 'http' && !isLoopback(host))
      issue(
        `plain http is allowed only to this machine (localhost, 127.x.x.x, [::1]): use https for "${host}"`,
      );
  });

/**
 * The name of the environment variable a worker reads the server's bearer token from. Never the
 * token itself: upper-case letters, digits and `_`, like every variable Baton reads.
 */
export const TokenEnvSchema = z
  .string()
  .regex(
    /^[A-Z][A-Z0-9_]{0,127}$/,
    'must name an environment variable that holds the token (upper-case letters, digits and "_", e.g. MCP_DOCS_TOKEN), never the token itself',
  );

/** A declared tool: its pin, and whether each call waits for a person's approval. */
export const McpToolPinSchema = z
  .object({
    /** contract/mcp.ts `pinOf` of the tool as the server lists it: `npm run baton -- mcp pin <server>` prints it. */
    sha256: z
      .string()
      .regex(
        /^[0-9a-f]{64}$/,
        'must be the tool\'s pin: 64 lower-case hex digits, as "npm run baton -- mcp pin <server>" prints it',
      ),
    /** `required`: each call pauses its step at a gate showing the exact call (docs/tools.md). */
    approval: z.literal('required').optional(),
  })
  .strict();
export type McpToolPin = z.infer<typeof McpToolPinSchema>;

export const McpServerSchema = z
  .object({
    url: McpUrlSchema,
    tokenEnv: TokenEnvSchema.optional(),
    /** Refused with a message that says where a token goes instead. */
    token: z
      .never({
        error:
          'a token never goes in config: put it in an environment variable and name that variable with tokenEnv',
      })
      .optional(),
    /** The tools agents may call on this server, by the name the server lists them under. */
    tools: z.record(McpToolNameSchema, McpToolPinSchema).superRefine((tools, ctx) => {
      const count = Object.keys(tools).length;
      if (count > MAX_MCP_TOOLS_PER_SERVER)
        ctx.addIssue({
          code: 'custom',
          message: `declares ${count} tools: at most ${MAX_MCP_TOOLS_PER_SERVER}`,
        });
    }),
  })
  .strict();
/** One declared MCP server, as config and a task's snapshot hold it. */
export type McpServer = z.infer<typeof McpServerSchema>;

export const McpServersSchema = z.record(McpServerIdSchema, McpServerSchema).superRefine((servers, ctx) => {
  const count = Object.keys(servers).length;
  if (count > MAX_MCP_SERVERS)
    ctx.addIssue({ code: 'custom', message: `declares ${count} servers: at most ${MAX_MCP_SERVERS}` });
});
/** `mcpServers`: declared servers by id. */
export type McpServers = z.infer<typeof McpServersSchema>;

/** An MCP tool as an agent's `tools` names it: `{ mcp: <server id>, tool: <tool name> }`. */
export const McpAgentToolSchema = z.object({ mcp: McpServerIdSchema, tool: McpToolNameSchema }).strict();
export type McpAgentTool = z.infer<typeof McpAgentToolSchema>;

/** Whether an entry of an agent's `tools` is an MCP tool (else a server tool of the registry). */
export const isMcpTool = (tool: unknown): tool is McpAgentTool =>
  typeof tool === 'object' && tool !== null && 'mcp' in tool;

/** The MCP tools among an agent's `tools`, as the tool loop names them (contract/mcp.ts `McpToolRef`). */
const mcpRefsOf = (tools: readonly unknown[]): { server: string; tool: string }[] =>
  tools.filter(isMcpTool).map((t) => ({ server: t.mcp, tool: t.tool }));

/** What {@link checkMcpTools} reads of agents.yaml. */
interface AgentsWithTools {
  agents: readonly { id: string; tools: readonly unknown[] }[];
  mcpServers?: McpServers;
}

/**
 * Every MCP tool an agent names is declared: its server in `mcpServers`, the tool in that server's
 * `tools`. Each finding names the agent, the index in its `tools` and what is missing.
 */
export function checkMcpTools(file: AgentsWithTools): Finding[] {
  const servers = file.mcpServers ?? {};
  const problems: Finding[] = [];
  file.agents.forEach((agent, a) =>
    agent.tools.forEach((tool, i) => {
      if (!isMcpTool(tool)) return;
      const at = ['agents', a, 'tools', i];
      const where = `agent "${agent.id}" tools[${i}]`;
      const server = Object.hasOwn(servers, tool.mcp) ? servers[tool.mcp] : undefined;
      if (!server)
        problems.push({
          at,
          message: `${where}: MCP server "${tool.mcp}" is not declared in mcpServers`,
        });
      else if (!Object.hasOwn(server.tools, tool.tool))
        problems.push({
          at,
          message: `${where}: tool "${tool.tool}" is not declared (pinned) under mcpServers.${tool.mcp}.tools: run "npm run baton -- mcp pin ${tool.mcp}" and review what it prints`,
        });
    }),
  );
  return problems;
}

/**
 * The declared servers `agents` use, each with only the tools they name: what a task's config
 * snapshot carries, so the MCP activities check against what the task started with. Undefined when
 * they use none (a snapshot then has no `mcpServers`, as before MCP).
 */
export function mcpServersFor(
  servers: McpServers | undefined,
  agents: readonly { tools: readonly unknown[] }[],
): McpServers | undefined {
  const used: McpServers = {};
  for (const { server, tool } of agents.flatMap((a) => mcpRefsOf(a.tools))) {
    const declared = servers && Object.hasOwn(servers, server) ? servers[server] : undefined;
    const pin = declared && Object.hasOwn(declared.tools, tool) ? declared.tools[tool] : undefined;
    if (!declared || !pin) continue;
    const entry = (used[server] ??= { ...declared, tools: {} });
    entry.tools[tool] = pin;
  }
  return Object.keys(used).length ? used : undefined;
}
