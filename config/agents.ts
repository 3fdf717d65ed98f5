/**
 * `agents.yaml`: the agents (model, prompt, tokens, tools, timeouts, retry), which one leads, and
 * the prices of their models.
 */
import { z } from 'zod';
import { DurationSchema, IdSchema } from './common';
import { isMcpTool, McpAgentToolSchema, McpServersSchema } from './mcp';

/** Names of the tools an agent may be given. The registry itself lives in `activities/tools.ts`. */
export const TOOL_NAMES = ['web_search', 'web_fetch'] as const;
export type ToolName = (typeof TOOL_NAMES)[number];

/**
 * A domain as the API's `allowed_domains` / `blocked_domains` take it: a host name, optionally
 * with a path (`docs.example.com`, `example.com/blog`); subdomains are included. No scheme.
 */
const DomainSchema = z
  .string()
  .max(253)
  .regex(
    /^(?=[^/]*\.)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?:\/[\w.~%/-]*)?$/i,
    'must be a domain such as "docs.example.com" or "example.com/blog" (no scheme, no port)',
  );

/**
 * A server tool with its limits from reviewed config (docs/tools.md): the domains it may (or may
 * not) reach, how many times one model call may use it, and for `web_fetch` how much of a page
 * enters the context and whether it is cited.
 */
export const ToolSettingsSchema = z
  .object({
    name: z.enum(TOOL_NAMES),
    allowedDomains: z.array(DomainSchema).min(1).max(100).optional(),
    blockedDomains: z.array(DomainSchema).min(1).max(100).optional(),
    maxUses: z.number().int().min(1).max(50).optional(),
    /** web_fetch only: the most tokens of a fetched page that enter the model's context. */
    maxContentTokens: z.number().int().min(100).max(200_000).optional(),
  })
  .strict()
  .superRefine((tool, ctx) => {
    if (tool.allowedDomains && tool.blockedDomains)
      ctx.addIssue({
        code: 'custom',
        path: ['blockedDomains'],
        message: 'give allowedDomains or blockedDomains, not both (the API refuses both)',
      });
    if (tool.maxContentTokens !== undefined && tool.name !== 'web_fetch')
      ctx.addIssue({ code: 'custom', path: ['maxContentTokens'], message: 'applies only to web_fetch' });
  });
export type ToolSettings = z.infer<typeof ToolSettingsSchema>;

/** A server tool an agent is given: by name, with the registry's defaults, or with its settings. */
export type AgentTool = ToolName | ToolSettings;

/** The name of a tool an agent is given. */
export const toolName = (tool: AgentTool): ToolName => (typeof tool === 'string' ? tool : tool.name);

/** An entry of an agent's `tools`: a server tool of the registry, or a declared MCP tool (config/mcp.ts). */
export const AgentToolSchema = z.union([z.enum(TOOL_NAMES), ToolSettingsSchema, McpAgentToolSchema], {
  error: (issue) =>
    issue.code !== 'invalid_union'
      ? undefined
      : isMcpTool(issue.input)
        ? 'must be an MCP tool as { mcp: <server id>, tool: <tool name> }, nothing else'
        : `must be a tool of the registry (${TOOL_NAMES.map((t) => `"${t}"`).join(', ')}), by name or as { name, allowedDomains, … }`,
});
export type AgentToolEntry = z.infer<typeof AgentToolSchema>;

/** The server tools among an agent's `tools` (its MCP tools go through the tool loop instead). */
export const serverTools = (tools: readonly AgentToolEntry[]): AgentTool[] =>
  tools.filter((t): t is AgentTool => !isMcpTool(t));

export const RetryPolicySchema = z
  .object({
    initialInterval: DurationSchema.default('2s'),
    backoffCoefficient: z.number().min(1).max(10).default(2),
    maximumInterval: DurationSchema.default('1m'),
    maximumAttempts: z.number().int().min(1).max(100).default(5),
    /** Failure types never retried, e.g. `ModelOutputInvalid` to fail fast on malformed answers. */
    nonRetryableErrorTypes: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type RetryPolicyConfig = z.infer<typeof RetryPolicySchema>;

export const AgentSchema = z
  .object({
    id: IdSchema,
    role: z.string().min(1).max(500),
    model: z.string().min(1),
    systemPrompt: z.string().min(1).max(20_000),
    maxTokens: z.number().int().min(64).max(64_000),
    /**
     * The model's context window in tokens (input and answer together), against which synthesis
     * measures its input, with `maxTokens` of room for the answer (docs/configuration.md).
     * Absent: {@link DEFAULT_CONTEXT_TOKENS}.
     */
    contextTokens: z.number().int().min(1024).max(10_000_000).optional(),
    /**
     * For the lead: how to size a plan to the question (effort scaling), given to it with every
     * planning request. The playbook's limits still bound whatever it plans.
     */
    effortRule: z.string().min(1).max(4000).optional(),
    tools: z
      .array(AgentToolSchema)
      .max(20)
      .default([])
      .superRefine((tools, ctx) => {
        const names = tools.map((t) => (isMcpTool(t) ? `${t.mcp}/${t.tool}` : toolName(t)));
        names.forEach((name, i) => {
          if (names.indexOf(name) !== i)
            ctx.addIssue({ code: 'custom', path: [i], message: `"${name}" is given twice` });
        });
      }),
    /**
     * With MCP tools: the most model turns a step's tool loop takes, the last of which must answer
     * (docs/tools.md, "The tool loop"). Absent: `DEFAULT_MAX_TOOL_TURNS` (contract/tool-loop.ts), 8.
     */
    maxToolTurns: z.number().int().min(1).max(50).optional(),
    timeouts: z
      .object({
        /** Longest a single model call may take, retries not included. */
        startToClose: DurationSchema.default('10m'),
        /**
         * A worker that says nothing for this long is presumed dead, and its call runs again on
         * another worker: the worker heartbeats a third of this apart while a call is open.
         */
        heartbeat: DurationSchema.default('10s'),
        /** A streaming call that sends no event for this long is presumed stuck: cut and retried. */
        streamIdle: DurationSchema.default('1m'),
      })
      .strict()
      .default({ startToClose: '10m', heartbeat: '10s', streamIdle: '1m' }),
    retry: RetryPolicySchema.default({
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '1m',
      maximumAttempts: 5,
      nonRetryableErrorTypes: [],
    }),
  })
  .strict();
export type AgentConfig = z.infer<typeof AgentSchema>;

/** An agent's context window when config gives none: Claude's 200,000 tokens. */
export const DEFAULT_CONTEXT_TOKENS = 200_000;

/** The agent's context window in tokens (snapshots older than the setting lack it). */
export const contextTokensOf = (agent: Pick<AgentConfig, 'contextTokens'>): number =>
  agent.contextTokens ?? DEFAULT_CONTEXT_TOKENS;

/** A price in USD per million tokens: finite, not negative, and below an absurd bound that catches typos. */
const UsdPerMTokSchema = z
  .number({
    error: (issue) =>
      issue.input === undefined
        ? 'is required (US dollars per million tokens)'
        : 'must be a number of US dollars per million tokens',
  })
  .min(0, 'must not be negative')
  .max(10_000, 'is implausibly high for USD per million tokens (at most 10000)');

/**
 * What one model costs, in USD per million tokens, as Anthropic lists it: base input, output, 5-minute
 * cache writes and cache reads (hits). All four are required: a reviewed table says each one.
 */
export const ModelPriceSchema = z
  .object({
    /** Input tokens that were neither read from nor written to the prompt cache. */
    input: UsdPerMTokSchema,
    output: UsdPerMTokSchema,
    /** Input tokens written to the prompt cache (5-minute entries, which is what Baton asks for). */
    cacheWrite: UsdPerMTokSchema,
    /** Input tokens read from the prompt cache. */
    cacheRead: UsdPerMTokSchema,
  })
  .strict()
  .superRefine((price, ctx) => {
    // Anthropic prices cache reads below, and cache writes above, base input: a table that says
    // otherwise has most likely swapped two columns.
    if (price.cacheRead > price.input)
      ctx.addIssue({
        code: 'custom',
        path: ['cacheRead'],
        message: `must not exceed input (${price.input}): cache reads are cheaper than base input; are cacheRead and cacheWrite swapped?`,
      });
    if (price.cacheWrite < price.input)
      ctx.addIssue({
        code: 'custom',
        path: ['cacheWrite'],
        message: `must not be below input (${price.input}): cache writes cost more than base input; are cacheRead and cacheWrite swapped?`,
      });
  });
export type ModelPrice = z.infer<typeof ModelPriceSchema>;

/** Prices by Anthropic model id. A model missing here has an unknown cost (shown as such, never as 0). */
export const PriceTableSchema = z.record(z.string(), ModelPriceSchema).superRefine((table, ctx) => {
  for (const model of Object.keys(table)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._:@/[\]-]{0,199}$/.test(model))
      ctx.addIssue({
        code: 'custom',
        path: [model],
        message: 'must be a model id such as "claude-sonnet-5-5"',
      });
  }
});
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** An agent as a task's config snapshot holds it: its config, and the price of its model when config lists one. */
export type SnapshotAgent = AgentConfig & {
  /** From `prices` in agents.yaml at the task's start. Absent: no price listed (or a snapshot older than prices). */
  price?: ModelPrice;
};

export const AgentsFileSchema = z
  .object({
    /** Id of the agent that plans and synthesizes. */
    lead: IdSchema,
    agents: z.array(AgentSchema).min(2),
    /**
     * USD per million tokens by model id, for cost estimates. Optional: without it (or without a
     * model in it) costs are shown as unknown. Changing it changes the config digest.
     */
    prices: PriceTableSchema.optional(),
    /** MCP servers agents may call, by id, each tool pinned (config/mcp.ts, docs/tools.md). */
    mcpServers: McpServersSchema.optional(),
  })
  .strict()
  .superRefine(
    (file, ctx) => {
      const seen = new Set<string>();
      file.agents.forEach((agent, i) => {
        if (seen.has(agent.id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['agents', i, 'id'],
            message: `duplicate agent id "${agent.id}"`,
          });
        }
        seen.add(agent.id);
      });
      if (!seen.has(file.lead)) {
        ctx.addIssue({
          code: 'custom',
          path: ['lead'],
          message: `no agent with id "${file.lead}" is declared`,
        });
      }
    },
    {
      // zod skips refinements once any field has an issue; these checks need only the ids, so they
      // run whenever the ids are readable and are reported together with field problems.
      when: (payload) => {
        const v = payload.value as { lead?: unknown; agents?: unknown } | undefined;
        return (
          typeof v?.lead === 'string' &&
          Array.isArray(v.agents) &&
          v.agents.every((a) => typeof (a as { id?: unknown } | null)?.id === 'string')
        );
      },
    },
  );
export type AgentsFile = z.infer<typeof AgentsFileSchema>;
