/**
 * Cost estimates: token usage priced with the `prices` table of `config/agents.yaml`.
 *
 * Pure code only: workflow code sums usage with {@link addUsageInto}, the model-call activity prices
 * each call with {@link usageCostUsd}, and the CLI and the report renderer format the result.
 *
 * An estimate, not a bill: it is the table applied to the token counts the API reported. It leaves
 * out what the table cannot say (server tool fees such as web search, long-prompt price tiers,
 * batch discounts, regional surcharges), and it is only as right as the table.
 *
 * Unknown is never 0: a model without a price gives `null`, and a total that includes any unknown
 * part is `null` too.
 */
import type { TokenUsage } from './messages';
import type { AgentsFile, ModelPrice, PriceTable } from '../config/schema';

const TOKENS_PER_MILLION = 1_000_000;

/** Rounds to a billionth of a dollar, so sums of many calls stay readable in JSON. */
const roundUsd = (usd: number): number => Math.round(usd * 1e9) / 1e9;

/** Every token a usage record counts: uncached input, output, cache reads and cache writes. */
export function tokensOf(usage: TokenUsage): number {
  return (
    usage.inputTokens +
    usage.outputTokens +
    (usage.cacheReadInputTokens ?? 0) +
    (usage.cacheCreationInputTokens ?? 0)
  );
}

/** The price of a model in a table, if the table lists it (own keys only: no `constructor` surprises). */
export function priceOf(prices: PriceTable | undefined, model: string): ModelPrice | undefined {
  return prices && Object.hasOwn(prices, model) ? prices[model] : undefined;
}

/**
 * USD for one usage record at one model's prices (per million tokens): uncached input at `input`,
 * output at `output`, cache writes at `cacheWrite`, cache reads at `cacheRead`. `null` when there is
 * no price and something was used; 0 when nothing was used.
 */
export function usageCostUsd(usage: TokenUsage, price: ModelPrice | undefined): number | null {
  if (tokensOf(usage) === 0) return 0;
  if (!price) return null;
  return roundUsd(
    (usage.inputTokens * price.input +
      usage.outputTokens * price.output +
      (usage.cacheCreationInputTokens ?? 0) * price.cacheWrite +
      (usage.cacheReadInputTokens ?? 0) * price.cacheRead) /
      TOKENS_PER_MILLION,
  );
}

/**
 * Adds `usage` into `total`, in place: tokens, cache reads and writes, and estimated cost.
 *
 * Usage recorded before Baton cached prompts or estimated costs lacks those fields; the sum then
 * lacks them too (a total of such records keeps its old shape). Once any record has a cost, the
 * total has one: the sum, or `null` (unknown) if any record in it has no price or no estimate.
 */
export function addUsageInto(total: TokenUsage, usage: TokenUsage): void {
  const hadTokens = tokensOf(total) > 0;
  total.inputTokens += usage.inputTokens;
  total.outputTokens += usage.outputTokens;
  if (usage.cacheReadInputTokens !== undefined)
    total.cacheReadInputTokens = (total.cacheReadInputTokens ?? 0) + usage.cacheReadInputTokens;
  if (usage.cacheCreationInputTokens !== undefined)
    total.cacheCreationInputTokens = (total.cacheCreationInputTokens ?? 0) + usage.cacheCreationInputTokens;
  if (total.costUsd === undefined && usage.costUsd === undefined) return;
  // A side without an estimate counts as unknown, unless it used nothing at all.
  const before = total.costUsd !== undefined ? total.costUsd : hadTokens ? null : 0;
  const added = usage.costUsd !== undefined ? usage.costUsd : tokensOf(usage) > 0 ? null : 0;
  total.costUsd = before === null || added === null ? null : roundUsd(before + added);
}

/**
 * Adds one agent's `usage` into a total that also counts per agent (`byAgent`), in place: the way a
 * task sums its model calls and its children's usage.
 */
export function addAgentUsageInto(
  total: TokenUsage & { byAgent: Record<string, TokenUsage> },
  agentId: string,
  usage: TokenUsage,
): void {
  addUsageInto(total, usage);
  addUsageInto((total.byAgent[agentId] ??= { inputTokens: 0, outputTokens: 0 }), usage);
}

/** The price table applied to per-agent usage. */
export interface CostEstimate {
  currency: 'USD';
  /** The sum over agents; `null` when any agent's cost is unknown. */
  totalUsd: number | null;
  byAgent: Record<string, { model: string | null; usd: number | null }>;
  /** Models that were used but have no price in the table, sorted. */
  unpricedModels: string[];
}

/**
 * Applies a price table to usage per agent (`modelOf` names each agent's model). For recomputing an
 * estimate with another table ("what would this task cost at today's prices?") and for checking the
 * per-call estimates Baton records, which sum to the same figures.
 */
export function estimateCost(
  byAgent: Readonly<Record<string, TokenUsage>>,
  modelOf: (agentId: string) => string | undefined,
  prices: PriceTable | undefined,
): CostEstimate {
  const estimate: CostEstimate = { currency: 'USD', totalUsd: 0, byAgent: {}, unpricedModels: [] };
  const unpriced = new Set<string>();
  for (const [agentId, usage] of Object.entries(byAgent)) {
    const model = modelOf(agentId) ?? null;
    const usd = usageCostUsd(usage, model === null ? undefined : priceOf(prices, model));
    if (usd === null && model !== null) unpriced.add(model);
    estimate.byAgent[agentId] = { model, usd };
    estimate.totalUsd = estimate.totalUsd === null || usd === null ? null : roundUsd(estimate.totalUsd + usd);
  }
  estimate.unpricedModels = [...unpriced].sort();
  return estimate;
}

/** The models agents use that the price table does not list (their costs will show as unknown), sorted. */
export function unpricedModels(agents: Pick<AgentsFile, 'agents' | 'prices'>): string[] {
  return [...new Set(agents.agents.map((a) => a.model))].filter((m) => !priceOf(agents.prices, m)).sort();
}

/** `$0.0421`, `$12.35`, `< $0.0001`: dollars for people, with enough digits for small model bills. */
export function formatUsd(usd: number): string {
  if (usd === 0) return '$0';
  if (usd < 0.0001) return '< $0.0001';
  return `$${usd < 1 ? usd.toFixed(4) : usd.toFixed(2)}`;
}
