/**
 * The zod schemas for everything Baton reads from `config/` and for the plans the lead agent writes:
 * the one module the rest of Baton imports config types and rules from. Each part has its own file:
 *
 * - `common.ts`: ids, durations, paths into a file, and {@link Finding} (a problem a rule found);
 * - `agents.ts`: `agents.yaml` (agents, tools, timeouts, retry, prices);
 * - `mcp.ts`: `mcpServers` in `agents.yaml` (MCP servers, their pinned tools) and its cross-check;
 * - `plan.ts`: the plan the lead writes, its limits, and {@link checkPlan};
 * - `playbook.ts`: `playbooks/*.yaml` (gates, limits, budgets, fixed plans) and the cross-file rules;
 * - `approvers.ts`: `approvers.yaml` (people and groups);
 * - `snapshot.ts`: {@link ConfigSnapshot}, the part of config a task carries;
 * - `publishers.ts`: `publishers.yaml` (the workers' report-signing public keys; read by the audit only).
 *
 * Pure code only: these modules are imported by workflow code (bundled into the deterministic
 * sandbox), by activities and by the CLI. Types are inferred from the schemas, never written twice.
 */
export * from './common';
export * from './agents';
export * from './mcp';
export * from './plan';
export * from './playbook';
export * from './approvers';
export * from './snapshot';
export * from './publishers';
